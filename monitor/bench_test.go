package monitor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/autoscale"
	"github.com/vmss-emulator/vmss/metrics"
)

// BenchmarkEvaluate1000 is one autoscale tick for a scale set of 1000
// instances at Azure's pace: the reference template's two rules (PT5M windows
// of PT1M grains) over samples every 15 s, an hour of them per instance.
func BenchmarkEvaluate1000(b *testing.B) {
	const set = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachineScaleSets/web"
	s, err := autoscale.Parse([]byte(fmt.Sprintf(autoscaleBody, true, set, set, set)))
	if err != nil {
		b.Fatal(err)
	}
	st := &metrics.Store{}
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	now := t0.Add(time.Hour)
	for i := 0; i < 1000; i++ {
		for k := 0; k <= 240; k++ {
			st.Add(metrics.Target{ResourceID: set, Instance: strconv.Itoa(i), VMSize: "Standard_A1"},
				metrics.Counters{CPU: time.Duration(k) * 7 * time.Second, HasCPU: true}, t0.Add(time.Duration(k)*15*time.Second))
		}
	}
	e := autoscale.Engine{}
	b.ResetTimer()
	for b.Loop() {
		d, err := e.Evaluate(context.Background(), s, autoscale.State{Capacity: 2}, now, source{st})
		if err != nil || !d.Rules[0].HasData {
			b.Fatalf("%v %+v", err, d)
		}
	}
}

// BenchmarkKernelSample1000 is one sampling round of 1000 idle instances
// from the kernel (root only: it makes 1000 accounting groups and removes
// them): the daemon's metric collection cost per round.
func BenchmarkKernelSample1000(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	k := &KernelSampler{Prefix: fmt.Sprintf("vmssmb%d-", os.Getpid()), Processes: func(string) ([]int, error) { return nil, nil }}
	if err := k.setup(); err != nil {
		b.Skip(err)
	}
	var ins []Instance
	for i := 0; i < 1000; i++ {
		ins = append(ins, Instance{ResourceID: "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachineScaleSets/web",
			ID: strconv.Itoa(i), Name: fmt.Sprintf("%sg-web_%d", k.Prefix, i), VMSize: "Standard_A1"})
	}
	defer func() {
		k.Sample(context.Background(), nil) // removes the groups it made
		for _, root := range []string{k.cpuRoot, k.ioRoot} {
			if root != "" {
				os.Remove(filepath.Join(root, k.group("")))
			}
		}
	}()
	if _, err := k.Sample(context.Background(), ins); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := k.Sample(context.Background(), ins); err != nil {
			b.Fatal(err)
		}
	}
}
