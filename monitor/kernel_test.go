package monitor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// On a v1 or hybrid host the sampler moves an instance's processes into the
// instance's group of the cgroup2 hierarchy, reads their CPU time there, and
// removes the group it made once the instance is gone.
func TestKernelSamplerAccountingGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	k := &KernelSampler{Prefix: fmt.Sprintf("vmssmt%d-", os.Getpid())}
	if err := k.setup(); err != nil {
		t.Skip(err)
	}
	if !k.move {
		t.Skip("cgroup v2 host: instances are accounted in their own group")
	}
	name := k.Prefix + "g-web_0"
	busy := exec.Command("/bin/sh", "-c", "while :; do :; done")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		busy.Process.Signal(syscall.SIGKILL)
		busy.Wait()
		for _, root := range []string{k.cpuRoot, k.ioRoot} {
			if root != "" {
				os.Remove(filepath.Join(root, k.group(name)))
				os.Remove(filepath.Join(root, k.group("")))
			}
		}
	}()
	k.Processes = func(n string) ([]int, error) {
		if n != name {
			return nil, fmt.Errorf("no instance %s", n)
		}
		return []int{busy.Process.Pid}, nil
	}
	in := Instance{ResourceID: "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachineScaleSets/web", ID: "0", Name: name, VMSize: "Standard_A1"}
	ctx := context.Background()
	first, err := k.Sample(ctx, []Instance{in})
	if err != nil {
		t.Fatal(err)
	}
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", busy.Process.Pid))
	if !strings.Contains(string(cg), "0::/"+k.group(name)+"\n") {
		t.Fatalf("the process was not moved into %s:\n%s", k.group(name), cg)
	}
	if k.ioRoot != "" && (!strings.Contains(string(cg), ":blkio:/"+k.group(name)+"\n") || !first[name].HasDisk) {
		t.Fatalf("not accounted in blkio group %s (disk counters %v):\n%s", k.group(name), first[name].HasDisk, cg)
	}
	var second time.Duration
	for i := 0; i < 50 && second <= first[name].CPU; i++ {
		time.Sleep(100 * time.Millisecond)
		c, err := k.Sample(ctx, []Instance{in})
		if err != nil {
			t.Fatal(err)
		}
		second = c[name].CPU
	}
	if !first[name].HasCPU || second <= first[name].CPU {
		t.Fatalf("CPU time did not grow: %v then %v", first[name], second)
	}
	// the instance is gone (its process too): the sampler removes its group
	busy.Process.Signal(syscall.SIGKILL)
	busy.Wait()
	dir := filepath.Join(k.cpuRoot, k.group(name))
	for i := 0; i < 50 && exists(dir); i++ {
		if _, err := k.Sample(ctx, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if exists(dir) {
		t.Fatalf("%s left behind", dir)
	}
	if k.ioRoot != "" && exists(filepath.Join(k.ioRoot, k.group(name))) {
		t.Fatalf("%s left behind", filepath.Join(k.ioRoot, k.group(name)))
	}
}
