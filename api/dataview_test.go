package api

import (
	"testing"

	"github.com/vmss-emulator/vmss/dataview"
)

func TestProbeStatuses(t *testing.T) {
	got := ProbeStatuses([]dataview.InstanceProbe{
		{LoadBalancer: "webLB", Probe: "http80", State: dataview.StateUp, LastResult: "success"},
		{LoadBalancer: "webLB", Probe: "tcp22", State: dataview.StateDown, LastResult: "connection refused"},
		{LoadBalancer: "webLB", Probe: "http80", State: dataview.StateDraining},
	})
	want := []struct{ code, level, msg string }{
		{"HealthProbe/webLB/http80/up", "Info", "success"},
		{"HealthProbe/webLB/tcp22/down", "Warning", "connection refused"},
		{"HealthProbe/webLB/http80/draining", "Info", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i, w := range want {
		if got[i].Code != w.code || got[i].Level != w.level || got[i].Message != w.msg {
			t.Errorf("status %d: %+v, want %+v", i, got[i], w)
		}
	}
	if got[1].DisplayStatus != "Load balancer webLB, probe tcp22: Down" {
		t.Errorf("display status %q", got[1].DisplayStatus)
	}
	if ProbeStatuses(nil) != nil {
		t.Errorf("no probes gave statuses")
	}
}
