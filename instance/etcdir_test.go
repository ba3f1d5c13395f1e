package instance

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmss-emulator/vmss/internal/mountinfo"
)

// mountOf returns the mount of the daemon's mount table on which path
// lies (the deepest mount point that is path or one of its parents), and
// the table.
func mountOf(t testing.TB, path string) (mountinfo.Mount, []mountinfo.Mount) {
	t.Helper()
	ms, err := mountinfo.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var best mountinfo.Mount
	for _, mt := range ms {
		if (path == mt.MountPoint || strings.HasPrefix(path, strings.TrimSuffix(mt.MountPoint, "/")+"/")) &&
			len(mt.MountPoint) >= len(best.MountPoint) {
			best = mt
		}
	}
	return best, ms
}

// children counts the mounts whose parent is mount id.
func children(ms []mountinfo.Mount, id int) int {
	n := 0
	for _, mt := range ms {
		if mt.ParentID == id && mt.ID != id {
			n++
		}
	}
	return n
}

// The generated /etc files, whose directory a new instance clones, lie on a
// mount with no mount on it (RuntimeDir/etc), so the clone does not cost
// more with every instance; the namespace pins stay on
// RuntimeDir/instances. Neither is visible inside an instance.
func TestEtcCloneSourceHasNoChildMounts(t *testing.T) {
	m := newTestManager(t)
	var names []string
	for _, s := range []string{"a", "b", "c"} {
		names = append(names, create(t, m, testSpec(m, s)).Name)
	}
	for _, name := range names {
		etc := m.etcDir(name)
		if want := filepath.Join(m.etcRoot(), name); etc != want {
			t.Errorf("etcDir(%s) = %s, want %s", name, etc, want)
		}
		mt, ms := mountOf(t, etc)
		if mt.MountPoint != m.etcRoot() || mt.FSType != "tmpfs" {
			t.Errorf("%s lies on %s (%s), want a tmpfs on %s", etc, mt.MountPoint, mt.FSType, m.etcRoot())
		}
		if n := children(ms, mt.ID); n != 0 {
			t.Errorf("%d mounts on %s, want none", n, mt.MountPoint)
		}
		// Positive control: the pins' mount has a mount per pin.
		pins, _ := mountOf(t, m.runDir(name))
		if n := children(ms, pins.ID); n < 2*len(names) {
			t.Errorf("%d mounts on %s, want at least the %d pins", n, pins.MountPoint, 2*len(names))
		}
		script := "cat /etc/hostname; grep -c ' " + m.etcRoot() + " ' /proc/self/mountinfo; grep -c ' " + m.runRoot() + " ' /proc/self/mountinfo; true"
		want := "host-" + strings.TrimPrefix(name, m.Prefix) + "\n0\n0"
		if got := run(t, m, name, sh(script)); got != want {
			t.Errorf("instance %s: hostname and mounts of %s, %s: %q, want %q", name, m.etcRoot(), m.runRoot(), got, want)
		}
	}
	if err := m.Delete(context.Background(), names[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(m.etcRoot(), names[0])); !os.IsNotExist(err) {
		t.Errorf("the /etc files of deleted instance %s: %v, want gone", names[0], err)
	}
	// The cleanup of the test checks that Cleanup unmounts and removes
	// RuntimeDir/etc.
}

// An instance made by an earlier version keeps its generated /etc files
// beside its namespace pins (RuntimeDir/instances/<name>/etc): a later
// daemon adopts it as it is (same mount namespace, files updated where the
// instance sees them), and Delete and Cleanup remove it.
func TestLegacyEtcLayoutAdoptedAndRemoved(t *testing.T) {
	m := newTestManager(t)
	ctx := context.Background()
	s := testSpec(m, "old")
	// What an earlier version made: the legacy directory exists, so Create
	// writes there and the instance binds its files from there.
	if _, err := m.ensureNsDirs(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(m.legacyEtcDir(s.Name), 0o755); err != nil {
		t.Fatal(err)
	}
	create(t, m, s)
	other := create(t, m, testSpec(m, "new"))
	if got := m.etcDir(s.Name); got != m.legacyEtcDir(s.Name) {
		t.Fatalf("etcDir of the old instance = %s, want %s", got, m.legacyEtcDir(s.Name))
	}
	if _, err := os.Stat(filepath.Join(m.etcRoot(), s.Name)); !os.IsNotExist(err) {
		t.Errorf("old instance has files in %s too: %v", m.etcRoot(), err)
	}
	mntIno := nsInode(t, m.nsFile(s.Name, "mnt"))

	// A new daemon (Manager) adopts it: Create keeps its namespaces and
	// updates the files it sees.
	m2 := &Manager{RuntimeDir: m.RuntimeDir, StateDir: m.StateDir, Prefix: m.Prefix, Logger: m.Logger}
	u := s
	u.Hostname = "renamed"
	if err := m2.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	if nsInode(t, m2.nsFile(s.Name, "mnt")) != mntIno {
		t.Error("adopting the old instance replaced its mount namespace")
	}
	if got := run(t, m2, s.Name, sh("hostname; cat /etc/hostname")); got != "renamed\nrenamed" {
		t.Errorf("old instance after update: %q", got)
	}
	if names, err := m2.List(ctx); err != nil || len(names) != 2 {
		t.Errorf("List = %v, %v, want both instances", names, err)
	}
	if err := m2.Delete(ctx, s.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.runDir(s.Name)); !os.IsNotExist(err) {
		t.Errorf("old instance's runtime directory after Delete: %v, want gone", err)
	}
	if got := run(t, m2, other.Name, sh("cat /etc/hostname")); got != other.Hostname {
		t.Errorf("the other instance's hostname: %q", got)
	}
}
