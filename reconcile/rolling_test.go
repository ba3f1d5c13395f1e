package reconcile

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

func TestParseISODuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"PT0S": 0, "PT30S": 30 * time.Second, "PT1M30S": 90 * time.Second, "PT2H": 2 * time.Hour, "P1D": 24 * time.Hour,
		"PT0.5S": 500 * time.Millisecond, "": 0, "nonsense": 0,
	} {
		if got := parseISODuration(in); got != want {
			t.Errorf("parseISODuration(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestRollingUpgradeGoesInBatches: a model change of a Rolling scale set
// reaches its instances 20% at a time, each batch only after the previous one
// runs the new model.
func TestRollingUpgradeGoesInBatches(t *testing.T) {
	e := setup(t)
	body := func(cmd string) []byte {
		b, _ := json.Marshal(map[string]any{
			"sku": map[string]any{"name": "Standard_A1", "capacity": 5},
			"properties": map[string]any{"overprovision": false,
				"upgradePolicy": map[string]any{"mode": "Rolling", "rollingUpgradePolicy": map[string]any{"maxBatchInstancePercent": 40}},
				"virtualMachineProfile": map[string]any{
					"osProfile": map[string]any{"computerNamePrefix": "web", "adminUsername": "azureuser", "adminPassword": "Passw0rd!x"},
					"networkProfile": map[string]any{"networkInterfaceConfigurations": []any{map[string]any{"name": "nic", "properties": map[string]any{
						"ipConfigurations": []any{map[string]any{"name": "ip", "properties": map[string]any{
							"subnet": map[string]any{"id": arm.MustID(sub0, "rg", arm.TypeSubnet, "vnet", "sn").String()}}}}}}}},
					"extensionProfile": map[string]any{"extensions": []any{
						map[string]any{"name": "health", "properties": map[string]any{"publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux",
							"settings": map[string]any{"protocol": "tcp", "port": 80}}},
						map[string]any{"name": "app", "properties": map[string]any{"publisher": "Microsoft.Azure.Extensions", "type": "CustomScript",
							"settings": map[string]any{"commandToExecute": cmd}}},
					}},
				}}})
		return b
	}
	e.update(func(s *model.State) *arm.Error { _, _, ae := s.PutScaleSet(e.set, body("v1"), false); return ae })
	e.converge()
	e.update(func(s *model.State) *arm.Error { _, _, ae := s.PutScaleSet(e.set, body("v2"), false); return ae })
	// Watch the generations pass by: never more than 2 of 5 (40%) upgrading at once.
	var gen int64
	e.store.View(func(s *model.State) { gen = s.ScaleSets[e.set.Key()].ModelGen })
	for i := 0; i < 60; i++ {
		e.r.Pass(t.Context())
		inflight := 0
		done := 0
		e.store.View(func(s *model.State) {
			e.k.mu.Lock() // flows of the last pass still run
			defer e.k.mu.Unlock()
			for _, in := range s.ScaleSets[e.set.Key()].Live() {
				if in.ModelGen == gen {
					if o := e.k.inst[in.Netns]; o != nil && o.ModelGen == gen && o.Started {
						done++
					} else {
						inflight++
					}
				}
			}
		})
		if inflight > 2 {
			t.Fatalf("%d instances upgrading at once, want at most 2 (40%% of 5)", inflight)
		}
		e.r.Wait()
		if done == 5 {
			break
		}
	}
	e.converge()
	upgraded := 0
	e.store.View(func(s *model.State) {
		for _, in := range s.ScaleSets[e.set.Key()].Live() {
			if in.ModelGen == gen {
				upgraded++
			}
		}
	})
	if upgraded != 5 {
		t.Fatalf("%d of 5 instances upgraded", upgraded)
	}
	if got := e.k.specs[e.live()[0].Netns].Extensions[1].Properties.Settings; !strings.Contains(string(got), "v2") {
		t.Errorf("instance runs %s, want the new model", got)
	}
}

// TestAutomaticRepairReplacesUnhealthy: with automaticRepairsPolicy enabled,
// an instance reported Unhealthy past the grace period is replaced by a new
// instance (new id) and the capacity stays.
func TestAutomaticRepairReplacesUnhealthy(t *testing.T) {
	e := setup(t)
	b, _ := json.Marshal(map[string]any{
		"sku": map[string]any{"name": "Standard_A1", "capacity": 3},
		"properties": map[string]any{"overprovision": false,
			"automaticRepairsPolicy": map[string]any{"enabled": true, "gracePeriod": "PT0S"},
			"virtualMachineProfile": map[string]any{
				"osProfile": map[string]any{"computerNamePrefix": "web", "adminUsername": "azureuser", "adminPassword": "Passw0rd!x"},
				"networkProfile": map[string]any{"networkInterfaceConfigurations": []any{map[string]any{"name": "nic", "properties": map[string]any{
					"ipConfigurations": []any{map[string]any{"name": "ip", "properties": map[string]any{
						"subnet": map[string]any{"id": arm.MustID(sub0, "rg", arm.TypeSubnet, "vnet", "sn").String()}}}}}}}},
				"extensionProfile": map[string]any{"extensions": []any{map[string]any{"name": "health", "properties": map[string]any{
					"publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux", "settings": map[string]any{"protocol": "tcp", "port": 80}}}}},
			}}})
	e.update(func(s *model.State) *arm.Error { _, _, ae := s.PutScaleSet(e.set, b, false); return ae })
	e.converge()
	sick := e.live()[1]
	e.k.mu.Lock()
	e.k.inst[sick.Netns].Health = "Unhealthy"
	e.k.mu.Unlock()
	e.converge()
	e.converge()
	var ids []string
	for _, in := range e.live() {
		ids = append(ids, in.ID)
	}
	if strings.Join(ids, ",") != "0,2,3" {
		t.Errorf("after repair: %v, want 0,2,3 (1 replaced by a new instance)", ids)
	}
	if _, ok := e.k.inst[sick.Netns]; ok {
		t.Error("the unhealthy instance is still in the kernel")
	}
}
