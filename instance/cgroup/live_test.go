package cgroup

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLive kills a forking process tree in every hierarchy mounted on this
// host (v1 freezer and pids, cgroup2), through the same join-then-exec
// wrapper the instance package uses.
func TestLive(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	hs, err := All()
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) == 0 {
		t.Skip("no cgroup hierarchy mounted")
	}
	for _, h := range hs {
		if h.Version == V2 { // also without cgroup.kill, as on kernels before 5.14
			old := h
			old.noCgroupKill = true
			hs = append(hs, old)
		}
	}
	for _, h := range hs {
		name := fmt.Sprintf("%s %s %s", h.Version, h.Controller, h.Dir)
		if h.noCgroupKill {
			name += " freeze"
		}
		t.Run(name, func(t *testing.T) {
			top := fmt.Sprintf("vmsst%06x", rand.IntN(1<<24))
			group := top + "/g"
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := h.Remove(ctx, top); err != nil {
					t.Error(err)
				}
				if h.Exists(top) {
					t.Errorf("%s left behind", h.Path(top))
				}
			})
			if err := h.Create(group + "/sub"); err != nil {
				t.Fatal(err)
			}
			// A shell that keeps forking sleeps, and one process in a sub-group.
			var cmds []*exec.Cmd
			for _, g := range []string{group, group + "/sub"} {
				cmd := exec.Command("/bin/sh", "-c", `echo $$ > "$0" && exec "$@"`, h.ProcsFile(g),
					"sh", "-c", `i=0; while [ $i -lt 3000 ]; do sleep 1000 & i=$((i+1)); done; wait`)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				cmds = append(cmds, cmd)
				defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			}
			var pids []int
			deadline := time.Now().Add(10 * time.Second)
			for len(pids) < 20 {
				if time.Now().After(deadline) {
					t.Fatalf("only %d processes joined %s", len(pids), h.Path(group))
				}
				time.Sleep(10 * time.Millisecond)
				if pids, err = h.Procs(group); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			if err := h.Kill(ctx, group); err != nil {
				t.Fatal(err)
			}
			t.Logf("killed a forking tree (%d+ processes) in %v", len(pids), time.Since(start))
			for _, cmd := range cmds {
				_ = cmd.Wait()
			}
			for _, pid := range pids {
				if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
					if s := string(b); !strings.Contains(s[strings.LastIndexByte(s, ')'):], ") Z") {
						t.Errorf("pid %d alive after Kill: %s", pid, s)
					}
				}
			}
			if left, err := h.Procs(group); err != nil || len(left) > 0 {
				t.Errorf("Procs after Kill = %v, %v", left, err)
			}
			if h.Controller == "freezer" {
				if b, _ := os.ReadFile(h.Path(group) + "/freezer.state"); strings.TrimSpace(string(b)) != "THAWED" {
					t.Errorf("freezer.state after Kill = %q", b)
				}
			}
			if h.noCgroupKill {
				if b, _ := os.ReadFile(h.Path(group) + "/cgroup.freeze"); strings.TrimSpace(string(b)) != "0" {
					t.Errorf("cgroup.freeze after Kill = %q", b)
				}
			}
			if h.Controller == "pids" {
				if b, _ := os.ReadFile(h.Path(group) + "/pids.max"); strings.TrimSpace(string(b)) != "max" {
					t.Errorf("pids.max after Kill = %q", b)
				}
			}
			if err := h.Remove(ctx, group); err != nil || h.Exists(group) {
				t.Errorf("Remove: %v (exists %v)", err, h.Exists(group))
			}
		})
	}
}
