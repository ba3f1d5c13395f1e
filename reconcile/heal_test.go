package reconcile

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

func TestInstanceHealthSource(t *testing.T) {
	probes := []ProbeHealth{{LoadBalancer: "LB", Probe: "http", State: "Down"}, {LoadBalancer: "lb", Probe: "tcp", State: "Up"}}
	for _, c := range []struct {
		name, probe string
		o           Observed
		want        string
	}{
		{"extension only", "", Observed{Health: "Unhealthy", Probes: probes}, "Unhealthy"},
		{"nothing reports", "", Observed{}, ""},
		{"probe down, extension ignored", "lb/http", Observed{Health: "Healthy", Probes: probes}, "Unhealthy"},
		{"probe up", "lb/tcp", Observed{Health: "Unhealthy", Probes: probes}, "Healthy"},
		{"probe not yet probing", "lb/other", Observed{Probes: probes}, "Unknown"},
		{"draining", "lb/x", Observed{Probes: []ProbeHealth{{LoadBalancer: "lb", Probe: "x", State: "Draining"}}}, "Unknown"},
	} {
		if got := instanceHealth(c.probe, c.o); got != c.want {
			t.Errorf("%s: health %q, want %q", c.name, got, c.want)
		}
	}
}

func TestHealthProbeOf(t *testing.T) {
	id := arm.MustID(sub0, "rg", arm.TypeLoadBalancer, "webLB").String() + "/probes/HttpProbe"
	vp := &arm.ScaleSetVMProfile{NetworkProfile: &arm.ScaleSetNetworkProfile{HealthProbe: &arm.SubResource{ID: id}}}
	if got := healthProbeOf(vp); got != "weblb/httpprobe" {
		t.Errorf("healthProbeOf = %q, want weblb/httpprobe", got)
	}
	if got := healthProbeOf(&arm.ScaleSetVMProfile{}); got != "" {
		t.Errorf("no healthProbe: %q", got)
	}
}

// rollingSet builds a Rolling scale set of n instances at model generation
// 2, the first `upgraded` of them already upgraded.
func rollingSet(n, upgraded int, policy map[string]any) *model.ScaleSet {
	raw, _ := json.Marshal(policy)
	ss := &model.ScaleSet{ModelGen: 2, Instances: map[string]*model.Instance{}}
	ss.Model.Properties = &arm.ScaleSetProperties{UpgradePolicy: &arm.UpgradePolicy{Mode: "Rolling", RollingUpgradePolicy: raw}}
	for i := 0; i < n; i++ {
		gen := int64(1)
		if i < upgraded {
			gen = 2
		}
		id := strconv.Itoa(i)
		ss.Instances[id] = &model.Instance{ID: id, Netns: "ns" + id, ModelGen: gen}
	}
	return ss
}

// TestNextRollingBatch: the decision of each rolling-upgrade step, with the
// policy examples of Azure's documentation (defaults 20/20/20, PT0S).
func TestNextRollingBatch(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		name     string
		n, up    int
		policy   map[string]any
		health   map[string]string // by instance id; default Healthy
		pending  string            // an upgraded instance not applied yet
		last     time.Duration     // since the last batch (0: none yet)
		want     string
		wantCode string
	}{
		{name: "first batch 20% of 10", n: 10, want: "0,1"},
		{name: "batch rounds up, 20% of 3", n: 3, want: "0"},
		{name: "maxBatchInstancePercent 50", n: 4, policy: map[string]any{"maxBatchInstancePercent": 50}, want: "0,1"},
		{name: "next batch after the previous", n: 10, up: 2, want: "2,3"},
		{name: "batch still applying", n: 10, up: 2, pending: "1", want: ""},
		{name: "upgraded health unknown waits", n: 10, up: 2, health: map[string]string{"1": "Unknown"}, want: ""},
		{name: "pause between batches", n: 10, up: 2, policy: map[string]any{"pauseTimeBetweenBatches": "PT10M"}, last: time.Minute, want: ""},
		{name: "pause over", n: 10, up: 2, policy: map[string]any{"pauseTimeBetweenBatches": "PT10M"}, last: 11 * time.Minute, want: "2,3"},
		{name: "one unhealthy upgraded of 5 is within 20%", n: 5, up: 1, health: map[string]string{"0": "Unhealthy"}, want: "1"},
		{name: "two unhealthy upgraded of 5 exceed 20%", n: 5, up: 2, health: map[string]string{"0": "Unhealthy", "1": "Unhealthy"}, wantCode: codeMaxUnhealthyUpgraded},
		{name: "maxUnhealthyUpgradedInstancePercent 0 stops at the first", n: 5, up: 1, policy: map[string]any{"maxUnhealthyUpgradedInstancePercent": 0}, health: map[string]string{"0": "Unhealthy"}, wantCode: codeMaxUnhealthyUpgraded},
		{name: "too many unhealthy before a batch", n: 5, health: map[string]string{"3": "Unhealthy", "4": "Unhealthy"}, wantCode: codeMaxUnhealthy},
		{name: "maxUnhealthyInstancePercent 50 allows them", n: 5, policy: map[string]any{"maxUnhealthyInstancePercent": 50}, health: map[string]string{"3": "Unhealthy", "4": "Unhealthy"}, want: "0"},
		{name: "prioritizeUnhealthyInstances", n: 10, policy: map[string]any{"prioritizeUnhealthyInstances": true}, health: map[string]string{"7": "Unhealthy"}, want: "7,0"},
		{name: "without priority, id order", n: 10, health: map[string]string{"7": "Unhealthy"}, want: "0,1"},
		{name: "all upgraded", n: 3, up: 3, want: ""},
		{name: "no health source gates on running only", n: 5, up: 1, health: map[string]string{"0": "", "1": "", "2": "", "3": "", "4": ""}, want: "1"},
	} {
		ss := rollingSet(c.n, c.up, c.policy)
		view := func(in *model.Instance) rollingInstance {
			h, ok := c.health[in.ID]
			if !ok {
				h = "Healthy"
			}
			return rollingInstance{Applied: in.ID != c.pending, Health: h}
		}
		var last time.Time
		if c.last > 0 {
			last = now.Add(-c.last)
		}
		ids, fault := nextRollingBatch(ss, view, last, now)
		if got := strings.Join(ids, ","); got != c.want {
			t.Errorf("%s: batch %q, want %q", c.name, got, c.want)
		}
		code := ""
		if fault != nil {
			code = fault.Code
		}
		if code != c.wantCode {
			t.Errorf("%s: error %q, want %q", c.name, code, c.wantCode)
		}
	}
}

func TestRepairPolicyDefaults(t *testing.T) {
	for _, c := range []struct {
		pol    arm.AutomaticRepairsPolicy
		grace  time.Duration
		action string
	}{
		{arm.AutomaticRepairsPolicy{}, 10 * time.Minute, RepairReplace},
		{arm.AutomaticRepairsPolicy{GracePeriod: "PT30M", RepairAction: "Restart"}, 30 * time.Minute, RepairRestart},
		{arm.AutomaticRepairsPolicy{RepairAction: "reimage"}, 10 * time.Minute, RepairReimage},
	} {
		on := arm.Bool(true)
		c.pol.Enabled = &on
		ss := &model.ScaleSet{}
		ss.Model.Properties = &arm.ScaleSetProperties{AutomaticRepairsPolicy: &c.pol}
		p := repairPolicy(ss)
		if !p.Enabled || p.Grace != c.grace || p.Action != c.action {
			t.Errorf("%+v: got %+v, want grace %v action %s", c.pol, p, c.grace, c.action)
		}
	}
}

// TestRepairsDue: grace period and at most 5% of the set (at least one).
func TestRepairsDue(t *testing.T) {
	now := time.Now()
	mk := func(n int) *model.ScaleSet {
		on := arm.Bool(true)
		ss := rollingSet(n, 0, nil)
		ss.Model.Properties = &arm.ScaleSetProperties{AutomaticRepairsPolicy: &arm.AutomaticRepairsPolicy{Enabled: &on, GracePeriod: "PT10M"}}
		return ss
	}
	for _, c := range []struct {
		name string
		n    int
		sick map[string]time.Duration // unhealthy for
		want string
	}{
		{"within grace", 4, map[string]time.Duration{"1": 9 * time.Minute}, ""},
		{"past grace", 4, map[string]time.Duration{"1": 11 * time.Minute}, "1"},
		{"one at a time below 40", 10, map[string]time.Duration{"1": 11 * time.Minute, "2": 12 * time.Minute}, "2"},
		{"5% of 40 is two, longest sick first", 40, map[string]time.Duration{"1": 11 * time.Minute, "2": 12 * time.Minute, "3": 13 * time.Minute}, "3,2"},
	} {
		ss := mk(c.n)
		since := func(in *model.Instance) time.Time {
			if d, ok := c.sick[in.ID]; ok {
				return now.Add(-d)
			}
			return time.Time{}
		}
		if got := strings.Join(repairsDue(ss, since, now), ","); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestRepairFromLoadBalancerProbe: a scale set naming a load-balancer probe
// in networkProfile.healthProbe is repaired from that probe alone: an
// instance the extension calls Unhealthy but the probe sees Up stays; the
// one the probe sees Down is replaced (new id, same capacity).
func TestRepairFromLoadBalancerProbe(t *testing.T) {
	e := setup(t)
	e.update(func(s *model.State) *arm.Error {
		_, _, ae := s.PutLoadBalancer(arm.MustID(sub0, "rg", arm.TypeLoadBalancer, "lb"), []byte(`{"properties":{"backendAddressPools":[{"name":"pool"}],
			"probes":[{"name":"http","properties":{"protocol":"Http","port":80,"requestPath":"/"}}]}}`))
		return ae
	})
	probeID := arm.MustID(sub0, "rg", arm.TypeLoadBalancer, "lb").String() + "/probes/http"
	b, _ := json.Marshal(map[string]any{
		"sku": map[string]any{"name": "Standard_A1", "capacity": 3},
		"properties": map[string]any{"overprovision": false,
			"automaticRepairsPolicy": map[string]any{"enabled": true, "gracePeriod": "PT0S"},
			"virtualMachineProfile": map[string]any{
				"osProfile": map[string]any{"computerNamePrefix": "web", "adminUsername": "azureuser", "adminPassword": "Passw0rd!x"},
				"networkProfile": map[string]any{"healthProbe": map[string]any{"id": probeID},
					"networkInterfaceConfigurations": []any{map[string]any{"name": "nic", "properties": map[string]any{
						"ipConfigurations": []any{map[string]any{"name": "ip", "properties": map[string]any{
							"subnet": map[string]any{"id": arm.MustID(sub0, "rg", arm.TypeSubnet, "vnet", "sn").String()}}}}}}}},
			}}})
	e.update(func(s *model.State) *arm.Error { _, _, ae := s.PutScaleSet(e.set, b, false); return ae })
	e.converge()
	live := e.live()
	e.k.mu.Lock()
	for i, in := range live {
		state := "Up"
		if i == 1 {
			state = "Down"
		}
		e.k.inst[in.Netns].Probes = []ProbeHealth{{LoadBalancer: "lb", Probe: "http", State: state}}
	}
	e.k.inst[live[2].Netns].Health = "Unhealthy" // the extension is not the source here
	e.k.mu.Unlock()
	e.converge()
	e.converge()
	var ids []string
	for _, in := range e.live() {
		ids = append(ids, in.ID)
	}
	if strings.Join(ids, ",") != "0,2,3" {
		t.Errorf("after repair: %v, want 0,2,3 (1 replaced, 2 kept: its probe is Up)", ids)
	}
}

// TestRollingUpgradeStopsOnUnhealthyUpgraded: a Rolling scale set watching
// a load-balancer probe upgrades one instance per batch (20% of 5); when the
// new model's instances fail the probe, the upgrade stops (Faulted) once
// more than 20% of the set is unhealthy after upgrading, leaving the rest on
// the old model; when the new model is healthy it completes (positive
// control).
func TestRollingUpgradeStopsOnUnhealthyUpgraded(t *testing.T) {
	for _, c := range []struct {
		name       string
		newState   string
		upgraded   int
		wantStatus string
	}{
		{"new model fails its probe", "Down", 2, RollingFaulted},
		{"new model healthy", "Up", 5, RollingCompleted},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := setup(t)
			e.update(func(s *model.State) *arm.Error {
				_, _, ae := s.PutLoadBalancer(arm.MustID(sub0, "rg", arm.TypeLoadBalancer, "lb"), []byte(`{"properties":{"backendAddressPools":[{"name":"pool"}],
					"probes":[{"name":"http","properties":{"protocol":"Http","port":80,"requestPath":"/"}}]}}`))
				return ae
			})
			probeID := arm.MustID(sub0, "rg", arm.TypeLoadBalancer, "lb").String() + "/probes/http"
			body := func(cmd string) []byte {
				b, _ := json.Marshal(map[string]any{
					"sku": map[string]any{"name": "Standard_A1", "capacity": 5},
					"properties": map[string]any{"overprovision": false,
						"upgradePolicy": map[string]any{"mode": "Rolling", "rollingUpgradePolicy": map[string]any{"maxBatchInstancePercent": 20}},
						"virtualMachineProfile": map[string]any{
							"osProfile": map[string]any{"computerNamePrefix": "web", "adminUsername": "azureuser", "adminPassword": "Passw0rd!x"},
							"networkProfile": map[string]any{"healthProbe": map[string]any{"id": probeID},
								"networkInterfaceConfigurations": []any{map[string]any{"name": "nic", "properties": map[string]any{
									"ipConfigurations": []any{map[string]any{"name": "ip", "properties": map[string]any{
										"subnet": map[string]any{"id": arm.MustID(sub0, "rg", arm.TypeSubnet, "vnet", "sn").String()}}}}}}}},
							"extensionProfile": map[string]any{"extensions": []any{
								map[string]any{"name": "app", "properties": map[string]any{"publisher": "Microsoft.Azure.Extensions", "type": "CustomScript",
									"settings": map[string]any{"commandToExecute": cmd}}},
							}},
						}}})
				return b
			}
			e.update(func(s *model.State) *arm.Error { _, _, ae := s.PutScaleSet(e.set, body("v1"), false); return ae })
			e.converge()
			var gen int64
			e.update(func(s *model.State) *arm.Error {
				_, _, ae := s.PutScaleSet(e.set, body("v2"), false)
				gen = s.ScaleSets[e.set.Key()].ModelGen
				return ae
			})
			// The probe says Up of the old model, c.newState of the new one.
			probe := func() {
				e.k.mu.Lock()
				defer e.k.mu.Unlock()
				for _, o := range e.k.inst {
					state := "Up"
					if o.ModelGen == gen {
						state = c.newState
					}
					o.Probes = []ProbeHealth{{LoadBalancer: "lb", Probe: "http", State: state}}
				}
			}
			for i := 0; i < 40; i++ {
				probe()
				e.r.Pass(t.Context())
				e.r.Wait()
			}
			upgraded := 0
			var ss *model.ScaleSet
			e.store.View(func(s *model.State) {
				ss = s.ScaleSets[e.set.Key()]
				for _, in := range ss.Live() {
					if in.ModelGen == gen {
						upgraded++
					}
				}
			})
			if upgraded != c.upgraded {
				t.Errorf("%d of 5 instances upgraded, want %d", upgraded, c.upgraded)
			}
			ru, ok := e.r.Rolling(e.set.Key(), ss)
			if !ok || ru.Status != c.wantStatus {
				t.Fatalf("rolling upgrade %+v, want %s", ru, c.wantStatus)
			}
			if c.wantStatus == RollingFaulted && (ru.Error == nil || ru.Error.Code != codeMaxUnhealthyUpgraded || ru.Failed != 2 || ru.Pending != 3) {
				t.Errorf("faulted upgrade: %+v (error %+v), want %s, 2 failed, 3 pending", ru, ru.Error, codeMaxUnhealthyUpgraded)
			}
		})
	}
}
