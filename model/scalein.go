package model

import (
	"sort"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
)

// Scale-in policy rules.
const (
	ScaleInDefault  = "Default"
	ScaleInNewestVM = "NewestVM"
	ScaleInOldestVM = "OldestVM"
)

// ScaleInPolicy returns the set's first scale-in rule, Default when none.
func (ss *ScaleSet) ScaleInPolicy() string {
	if p := ss.Model.Properties; p != nil && p.ScaleInPolicy != nil && len(p.ScaleInPolicy.Rules) > 0 {
		switch strings.ToLower(p.ScaleInPolicy.Rules[0]) {
		case "newestvm":
			return ScaleInNewestVM
		case "oldestvm":
			return ScaleInOldestVM
		}
	}
	return ScaleInDefault
}

// SelectScaleIn picks n instances to remove from live, following Azure's rules:
// instances protected from scale-in are skipped; Default balances fault domains
// (it takes from the domain with the most instances) and then removes the
// highest instance id; NewestVM removes the most recently created, OldestVM the
// least recently created (ties broken by id). Instances being deleted must not
// be in live. It fails, choosing nothing, when fewer than n are unprotected.
func SelectScaleIn(live []*Instance, n int, policy string) ([]*Instance, *arm.Error) {
	if n <= 0 {
		return nil, nil
	}
	var cand []*Instance
	for _, in := range live {
		if !in.Protect && !in.ProtectSet {
			cand = append(cand, in)
		}
	}
	if len(cand) < n {
		return nil, arm.Errorf(409, "OperationNotAllowed", "sku.capacity",
			"Scaling in by %d needs %d unprotected instances but only %d are not protected from scale-in. Lower the capacity change, remove protection (vmss update --instance-id ID --protect-from-scale-in false), or delete instances by id.",
			n, n, len(cand))
	}
	switch policy {
	case ScaleInNewestVM, ScaleInOldestVM:
		sort.SliceStable(cand, func(i, j int) bool {
			a, b := cand[i], cand[j]
			if !a.Created.Equal(b.Created) {
				if policy == ScaleInNewestVM {
					return a.Created.After(b.Created)
				}
				return a.Created.Before(b.Created)
			}
			if policy == ScaleInNewestVM {
				return a.IDNum() > b.IDNum()
			}
			return a.IDNum() < b.IDNum()
		})
		return cand[:n], nil
	}
	// Default: repeatedly take from the fault domain holding the most instances
	// (counting protected ones, since they occupy the domain) among domains that
	// still have a candidate; within it, the highest id. Ties between domains go
	// to the one whose candidate has the highest id.
	count := map[int]int{}
	for _, in := range live {
		count[in.FaultDomain]++
	}
	taken := map[*Instance]bool{}
	var out []*Instance
	for len(out) < n {
		var best *Instance
		for _, in := range cand {
			if taken[in] {
				continue
			}
			if best == nil {
				best = in
				continue
			}
			cb, ci := count[best.FaultDomain], count[in.FaultDomain]
			if ci > cb || (ci == cb && in.IDNum() > best.IDNum()) {
				best = in
			}
		}
		taken[best] = true
		count[best.FaultDomain]--
		out = append(out, best)
	}
	return out, nil
}
