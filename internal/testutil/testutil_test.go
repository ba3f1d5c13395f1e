package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestUniqueName(t *testing.T) {
	a, b := UniqueName("vmsst"), UniqueName("vmsst")
	if a == b || len(a) != 13 || !strings.HasPrefix(a, "vmsst") {
		t.Errorf("names %q %q", a, b)
	}
}

func TestSyncBufferFromManyGoroutines(t *testing.T) {
	var buf SyncBuffer
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() { defer wg.Done(); fmt.Fprintf(&buf, "line %d\n", i) }()
	}
	wg.Wait()
	if n := strings.Count(buf.String(), "\n"); n != 20 {
		t.Errorf("%d lines, want 20", n)
	}
}

func TestRemoveBrowserProfileWaitsForItsProcesses(t *testing.T) {
	dir := t.TempDir()
	profile := filepath.Join(dir, "profile")
	if err := os.Mkdir(profile, 0o755); err != nil {
		t.Fatal(err)
	}
	// A stand-in for a browser helper: it names the profile on its command
	// line and writes into it after a moment, as chromium's do.
	cmd := exec.Command("sh", "-c", `sleep 0.3; mkdir -p "$1/Default" && echo x > "$1/Default/state"`, "helper", profile)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if n := ProcessesNaming(profile); n != 1 {
		t.Fatalf("ProcessesNaming = %d while the helper runs, want 1", n)
	}
	if err := RemoveBrowserProfile(profile, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("helper: %v", err)
	}
	if _, err := os.Stat(profile); !os.IsNotExist(err) {
		t.Fatalf("the profile is back after the removal (stat: %v)", err)
	}
}

func TestRemoveBrowserProfileGivesUp(t *testing.T) {
	profile := filepath.Join(t.TempDir(), "profile")
	cmd := exec.Command("sh", "-c", "sleep 5; :", "helper", profile) // names the profile and outlives the wait
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	err := RemoveBrowserProfile(profile, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "still use it") {
		t.Fatalf("err = %v, want one saying processes still use it", err)
	}
}
