package workload

import (
	"testing"
	"time"
)

// A stored interval outside Azure's range (state written before the API
// checked it) must not crash the daemon: time.NewTicker panics on <= 0.
func TestHealthInterval(t *testing.T) {
	for _, c := range []struct {
		seconds  int64
		scale    float64
		override time.Duration
		want     time.Duration
	}{
		{15, 0, 0, 15 * time.Second},
		{0, 0, 0, 5 * time.Second},
		{-3, 0, 0, 5 * time.Second},
		{1 << 40, 0, 0, 5 * time.Second},
		{10, 0.1, 0, time.Second},
		{10, 1e-12, 0, time.Millisecond},
		{10, 0.1, 250 * time.Millisecond, 250 * time.Millisecond},
	} {
		if got := healthInterval(c.seconds, c.scale, c.override); got != c.want || got <= 0 {
			t.Errorf("healthInterval(%d, %v, %v) = %v, want %v", c.seconds, c.scale, c.override, got, c.want)
		}
	}
}
