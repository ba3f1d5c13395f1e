package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/daemon"
	"github.com/vmss-emulator/vmss/internal/lockfile"
)

// TestSecondDaemonSamePrefixRefused: a daemon with another state directory
// but the same prefix is refused (it would delete the first one's
// instances as orphans), and `cleanup --force` leaves the live daemon's
// locks in place.
func TestSecondDaemonSamePrefixRefused(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	e.MustCLI("create", "-n", "lk", "--instance-count", "1", "--disable-overprovision", "--admin-password", password, "-o", "none")
	insts := e.Instances("lk")
	if len(insts) != 1 {
		t.Fatalf("instances: %+v", insts)
	}

	other := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, vmssBin, "serve", "--socket", filepath.Join(other, "vmss.sock"), "--state-dir", filepath.Join(other, "state"),
		"--runtime-dir", e.RuntimeDir+"b", "--prefix", e.Prefix, "--public-ip-range", e.PIPRange, "--metrics-addr", "off")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err == nil || ctx.Err() != nil || !strings.Contains(out.String(), "in use by another vmss daemon") {
		t.Fatalf("second daemon with the same prefix: %v (ctx %v)\n%s", err, ctx.Err(), out.String())
	}
	if got := e.Instances("lk"); len(got) != 1 || got[0].PowerState != insts[0].PowerState {
		t.Errorf("first daemon's instances after the refused start: %+v", got)
	}
	if InNetnsOK(insts[0].Netns) != nil {
		t.Errorf("instance namespace %s gone after the refused start", insts[0].Netns)
	}

	// Positive control: another prefix runs next to it.
	e2 := Start(t, Options{})
	e2.MustCLI("group", "list", "-o", "none")

	stateLock := filepath.Join(e.StateDir, "state", "lock")
	if out, err := exec.Command(vmssBin, "cleanup", "--force", "--prefix", e.Prefix, "--state-dir", filepath.Join(e.StateDir, "state"),
		"--runtime-dir", e.RuntimeDir, "--socket", e.Socket).CombinedOutput(); err != nil {
		t.Fatalf("cleanup --force: %v\n%s", err, out)
	}
	for _, p := range []string{stateLock, daemon.PrefixLockPath(e.Prefix)} {
		l, err := lockfile.TryLock(p)
		if !errors.Is(err, lockfile.ErrHeld) {
			l.Close()
			t.Errorf("%s after cleanup --force with the daemon alive: %v, want still held", p, err)
		}
	}
	// Once the daemon is gone, cleanup removes the locks.
	stopDaemon(t, e, syscall.SIGTERM)
	if out, err := exec.Command(vmssBin, "cleanup", "--prefix", e.Prefix, "--state-dir", filepath.Join(e.StateDir, "state"),
		"--runtime-dir", e.RuntimeDir, "--socket", e.Socket).CombinedOutput(); err != nil {
		t.Fatalf("cleanup: %v\n%s", err, out)
	}
	for _, p := range []string{stateLock, daemon.PrefixLockPath(e.Prefix)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left by cleanup: %v", p, err)
		}
	}
}

// InNetnsOK reports whether a named network namespace can be entered.
func InNetnsOK(netns string) error {
	_, err := InNetns(netns, "true")
	return err
}
