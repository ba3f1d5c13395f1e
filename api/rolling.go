package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// RollingUpgradeStatus is the latest rolling upgrade of a scale set.
type RollingUpgradeStatus struct {
	Code                                    string // RollingForward, Completed, Faulted
	Start, End                              time.Time
	Error                                   *arm.Error
	Successful, Failed, InProgress, Pending int
}

// RollingUpgrades is implemented by runtimes that carry out rolling
// upgrades; the API serves …/rollingUpgrades/latest from it.
type RollingUpgrades interface {
	// RollingUpgrade reports the latest rolling upgrade of a scale set (by
	// lower-cased id), false when it never had one.
	RollingUpgrade(key string, ss *model.ScaleSet) (RollingUpgradeStatus, bool)
}

// rollingUpgradeLatest serves GET …/virtualMachineScaleSets/{name}/rollingUpgrades/latest.
func (s *Server) rollingUpgradeLatest(req *request) {
	id := req.id(1)
	var out any
	var e *arm.Error
	s.Store.View(func(st *model.State) {
		ss, err := st.ScaleSetByID(id)
		if err != nil {
			e = err
			return
		}
		ru, ok := s.Runtime.(RollingUpgrades)
		var status RollingUpgradeStatus
		if ok {
			status, ok = ru.RollingUpgrade(id.Key(), ss)
		}
		if !ok {
			e = arm.Errorf(http.StatusNotFound, "NotFound", id.String(), "The scale set %s has had no rolling upgrade.", ss.Model.Name)
			return
		}
		props := map[string]any{
			"runningStatus": map[string]any{"code": status.Code, "startTime": status.Start.UTC().Format(time.RFC3339Nano),
				"lastAction": "Start", "lastActionTime": status.Start.UTC().Format(time.RFC3339Nano)},
			"progress": map[string]int{"successfulInstanceCount": status.Successful, "failedInstanceCount": status.Failed,
				"inProgressInstanceCount": status.InProgress, "pendingInstanceCount": status.Pending},
		}
		if p := ss.Model.Properties; p != nil && p.UpgradePolicy != nil && len(p.UpgradePolicy.RollingUpgradePolicy) > 0 {
			props["policy"] = json.RawMessage(p.UpgradePolicy.RollingUpgradePolicy)
		}
		if status.Error != nil {
			props["error"] = status.Error
		}
		out = map[string]any{"type": "Microsoft.Compute/virtualMachineScaleSets/rollingUpgrades",
			"location": ss.Model.Location, "properties": props}
	})
	if e != nil {
		writeErr(req.w, e)
		return
	}
	writeJSON(req.w, 200, out)
}
