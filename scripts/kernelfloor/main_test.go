package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

// TestRunLeavesNothing makes and removes a few instances and checks that the
// counts were reached and that no tmpfs, cgroup or namespace of the run is
// left.
func TestRunLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	prefix := fmt.Sprintf("vmsskft%d", os.Getpid())
	before, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	out := captureStdout(t, func() error { return run(context.Background(), prefix, []int{3, 5}) })
	for _, n := range []string{"\n3 ", "\n5 "} {
		if !strings.Contains(out, n) {
			t.Errorf("no row for N=%s in the output:\n%s", strings.TrimSpace(n), out)
		}
	}
	if m, _ := filepath.Glob("/run/" + prefix + "-*"); len(m) > 0 {
		t.Errorf("left behind: %v", m)
	}
	if m, _ := filepath.Glob("/sys/fs/cgroup/*/" + prefix); len(m) > 0 {
		t.Errorf("cgroups left behind: %v", m)
	}
	if m, _ := filepath.Glob("/sys/fs/cgroup/" + prefix); len(m) > 0 {
		t.Errorf("cgroups left behind: %v", m)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mi), prefix) {
		t.Errorf("mounts of %s left in /proc/self/mountinfo", prefix)
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as after Ctrl-C: stops before the first instance
	prefix := fmt.Sprintf("vmsskfc%d", os.Getpid())
	var err error
	captureStdout(t, func() error { err = run(ctx, prefix, []int{10}); return nil })
	if err == nil {
		t.Fatal("run with a cancelled context returned nil")
	}
	if m, _ := filepath.Glob("/run/" + prefix + "-*"); len(m) > 0 {
		t.Errorf("left behind after the cancel: %v", m)
	}
}

func captureStdout(t *testing.T, f func() error) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		done <- b.String()
	}()
	ferr := f()
	os.Stdout = old
	w.Close()
	out := <-done
	if ferr != nil {
		t.Fatalf("run: %v\n%s", ferr, out)
	}
	return out
}
