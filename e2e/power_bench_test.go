package e2e

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkStopStartCLI measures `vmss stop` and `vmss start` of one
// instance of a scale set of 3 behind a load balancer (an HTTP probe, no
// traffic), through the CLI, each until its operation ends: the daemon's
// work on the instance (draining it out of the pool, killing its processes;
// starting SSH and its workload again) and the CLI's polling.
//
//	sudo go test ./e2e/ -run '^$' -bench StopStartCLI -benchtime 20x
func BenchmarkStopStartCLI(b *testing.B) {
	e := Start(b, Options{ProbeScale: "0.05"})
	lbCreateUp(e, "web", 3, webapp)
	took := map[string][]float64{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, op := range []string{"stop", "start"} {
			t0 := time.Now()
			e.MustCLI(op, "-n", "web", "--instance-ids", "0", "-o", "none")
			took[op] = append(took[op], float64(time.Since(t0).Microseconds())/1000)
		}
	}
	b.StopTimer()
	for op, ms := range took {
		slices.Sort(ms)
		b.ReportMetric(ms[len(ms)/2], op+"-p50-ms")
		b.ReportMetric(ms[min(len(ms)-1, len(ms)*99/100)], op+"-p99-ms")
	}
}
