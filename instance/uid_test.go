package instance

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestClaimUID(t *testing.T) {
	m := &Manager{Prefix: "vmsst-", UIDDir: filepath.Join(t.TempDir(), "uids")}
	a, err := m.claimUID("vmsst-a", 0)
	if err != nil || a != AdminUIDBase {
		t.Fatalf("first claim = %d, %v; want %d", a, err, AdminUIDBase)
	}
	b, err := m.claimUID("vmsst-b", 0)
	if err != nil || b != AdminUIDBase+1 {
		t.Fatalf("second claim = %d, %v; want %d", b, err, AdminUIDBase+1)
	}
	// The same instance gets its uid again (a restarted daemon, a repeated Create).
	if again, err := m.claimUID("vmsst-a", 0); err != nil || again != a {
		t.Errorf("claim again = %d, %v; want %d", again, err, a)
	}
	// A recorded uid is claimed again after a reboot (claims lost).
	if err := os.RemoveAll(m.UIDDir); err != nil {
		t.Fatal(err)
	}
	if got, err := m.claimUID("vmsst-b", b); err != nil || got != b {
		t.Errorf("re-claim of the recorded uid = %d, %v; want %d", got, err, b)
	}
	// Taken by another instance: an error naming it; a new instance gets
	// the lowest free uid.
	if _, err := m.claimUID("vmsst-c", b); err == nil || !strings.Contains(err.Error(), "vmsst-b") {
		t.Errorf("claim of b's uid for c: %v, want an error naming vmsst-b", err)
	}
	if c, err := m.claimUID("vmsst-c", 0); err != nil || c != AdminUIDBase {
		t.Errorf("claim for c = %d, %v; want the free %d", c, err, AdminUIDBase)
	}
	// Another prefix's claims survive a release of this prefix.
	other := &Manager{Prefix: "other-", UIDDir: m.UIDDir}
	o, err := other.claimUID("other-x", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.releaseUID("vmsst-c"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(m.UIDDir, strconv.Itoa(AdminUIDBase))); !os.IsNotExist(err) {
		t.Errorf("claim of vmsst-c not released: %v", err)
	}
	if err := m.releasePrefixUIDs(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(m.UIDDir)
	if len(ents) != 1 || ents[0].Name() != strconv.Itoa(o) {
		t.Errorf("claims left after releasing prefix vmsst-: %v, want only other-x's %d", ents, o)
	}
}
