package dashboard

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Each instance's latest CPU figure is asked over three of its own
// sampling intervals: when the monitor samples each instance every minute
// (many instances, a round reads some of them), a window of three rounds
// would leave most instances without a figure.
func TestInstanceCPUWindowFollowsInstanceInterval(t *testing.T) {
	var mu sync.Mutex
	var spans []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Query().Get("$filter"), "VMName") {
			mu.Lock()
			spans = append(spans, r.URL.Query().Get("timespan"))
			mu.Unlock()
		}
		w.Write([]byte(`{"value":[]}`))
	})
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		every func() time.Duration
		want  time.Duration
	}{
		{nil, 5 * time.Second}, // three rounds of 1 s, at least 5 s
		{func() time.Duration { return time.Minute }, 3 * time.Minute},
	} {
		s, err := New(Config{ARM: h, Subscription: "00000000-0000-0000-0000-000000000000", SampleInterval: time.Second, InstanceInterval: tc.every})
		if err != nil {
			t.Fatal(err)
		}
		spans = nil
		s.cpu(context.Background(), "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web", now)
		want := now.Add(-tc.want).UTC().Format(time.RFC3339Nano) + "/" + now.UTC().Format(time.RFC3339Nano)
		mu.Lock()
		if len(spans) != 1 || spans[0] != want {
			t.Errorf("per-instance CPU asked over %v, want %s (%v)", spans, want, tc.want)
		}
		mu.Unlock()
	}
}
