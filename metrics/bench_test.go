package metrics

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkSeries1000 is the cost of one autoscale rule's query on a scale
// set of 1000 instances with full ring buffers (720 samples each).
func BenchmarkSeries1000(b *testing.B) {
	st := &Store{}
	for i := 0; i < 1000; i++ {
		for s := 0; s < DefaultCapacity; s++ {
			add(st, strconv.Itoa(i), "Standard_A1", s, time.Duration(s)*100*time.Millisecond, 0, 0)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := st.Series(setID, PercentageCPU, time.Minute, "Average", t0.Add(7*time.Minute), t0.Add(12*time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAdd1000 is the cost of recording one sampling round of 1000
// instances.
func BenchmarkAdd1000(b *testing.B) {
	st := &Store{}
	s := 0
	for b.Loop() {
		s++
		for i := 0; i < 1000; i++ {
			add(st, strconv.Itoa(i), "Standard_A1", s, time.Duration(s)*100*time.Millisecond, 0, 0)
		}
	}
}
