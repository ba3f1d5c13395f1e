package metrics

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuAccountingDir finds a mounted cgroup hierarchy that accounts CPU time:
// cgroup2 (cpu.stat is always there) or the v1 cpuacct controller.
func cpuAccountingDir(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Skipf("no mountinfo: %v", err)
	}
	defer f.Close()
	var v1 string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		switch {
		case qf[0] == "cgroup2":
			if _, err := os.Stat(filepath.Join(pf[4], "cpu.stat")); err == nil {
				return pf[4]
			}
		case qf[0] == "cgroup" && strings.Contains(","+qf[2]+",", ",cpuacct,"):
			v1 = pf[4]
		}
	}
	if v1 == "" {
		t.Skip("no cgroup hierarchy accounts CPU time")
	}
	return v1
}

// A real cgroup with a busy loop in it shows Percentage CPU rising from zero.
func TestLiveCPU(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a cgroup")
	}
	dir := filepath.Join(cpuAccountingDir(t), fmt.Sprintf("vmss-metricstest-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var loop *exec.Cmd
	t.Cleanup(func() {
		if loop != nil && loop.Process != nil {
			loop.Process.Signal(syscall.SIGKILL)
			loop.Wait()
		}
		for i := 0; i < 50; i++ { // the cgroup is removable once its last process is reaped
			if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("could not remove %s", dir)
	})
	st := &Store{}
	col := &Collector{Reader: Kernel{}, Store: st}
	target := Target{ResourceID: setID, Instance: "0", VMSize: "Standard_A1", CPUDir: dir}
	start := time.Now()
	measure := func() float64 {
		t.Helper()
		if err := col.Collect(ctx, []Target{target}, time.Now()); err != nil {
			t.Fatal(err)
		}
		pts, err := st.Series(setID, PercentageCPU, time.Hour, "Maximum", start, time.Now().Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var v float64
		for _, p := range pts {
			if p.Count > 0 {
				v = max(v, p.Value)
			}
		}
		return v
	}
	measure()
	time.Sleep(300 * time.Millisecond)
	if idle := measure(); idle != 0 {
		t.Fatalf("empty cgroup shows %.1f%% CPU", idle)
	}
	loop = exec.CommandContext(ctx, "/bin/sh", "-c", `echo $$ > "$0" && while :; do :; done`, filepath.Join(dir, "cgroup.procs"))
	if err := loop.Start(); err != nil {
		t.Fatal(err)
	}
	busy := 0.0
	for ctx.Err() == nil && busy < 10 {
		time.Sleep(500 * time.Millisecond)
		busy = measure()
	}
	if busy < 10 {
		t.Fatalf("a busy loop shows only %.1f%% CPU", busy)
	}
	t.Logf("busy loop: %.1f%% CPU of one vCPU", busy)
}
