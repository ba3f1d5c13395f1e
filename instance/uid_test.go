package instance

import (
	"fmt"
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
	if err := m.releaseUID("vmsst-c", 0); err != nil {
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

// TestReleaseUID checks that a claim is released by the recorded uid, that
// a wrong or unknown recorded uid falls back to looking through the claims,
// and that other instances' claims stay.
func TestReleaseUID(t *testing.T) {
	m := &Manager{Prefix: "vmsst-", UIDDir: filepath.Join(t.TempDir(), "uids")}
	claim := func(name string) int {
		t.Helper()
		uid, err := m.claimUID(name, 0)
		if err != nil {
			t.Fatal(err)
		}
		return uid
	}
	claimed := func(uid int) string {
		owner, _ := os.Readlink(filepath.Join(m.UIDDir, strconv.Itoa(uid)))
		return owner
	}
	a, b, c := claim("vmsst-a"), claim("vmsst-b"), claim("vmsst-c")
	for _, tc := range []struct {
		name string
		uid  int // recorded
		gone int // claim released
	}{
		{"vmsst-b", b, b},    // by its recorded uid
		{"vmsst-a", c, a},    // recorded uid is c's claim: c keeps it, a's is found
		{"vmsst-c", 0, c},    // unknown uid
		{"vmsst-x", 1000, 0}, // no claim at all: nothing to do
	} {
		if err := m.releaseUID(tc.name, tc.uid); err != nil {
			t.Fatalf("releaseUID(%s, %d): %v", tc.name, tc.uid, err)
		}
		if tc.gone != 0 && claimed(tc.gone) != "" {
			t.Errorf("releaseUID(%s, %d): claim %d still held by %q", tc.name, tc.uid, tc.gone, claimed(tc.gone))
		}
	}
	if claimed(a) != "" || claimed(b) != "" || claimed(c) != "" {
		t.Errorf("claims left: %q %q %q", claimed(a), claimed(b), claimed(c))
	}
	if _, err := os.Stat(m.UIDDir); !os.IsNotExist(err) {
		t.Errorf("empty claim directory left: %v", err)
	}
}

// BenchmarkReleaseUID releases the claim of one instance among 4,096 by its
// recorded uid (what Delete does), against a host-wide look through the
// claims when the uid is unknown.
func BenchmarkReleaseUID(b *testing.B) {
	for _, known := range []bool{true, false} {
		b.Run(fmt.Sprintf("known=%v", known), func(b *testing.B) {
			m := &Manager{Prefix: "vmsst-", UIDDir: filepath.Join(b.TempDir(), "uids")}
			if err := os.MkdirAll(m.UIDDir, 0o700); err != nil {
				b.Fatal(err)
			}
			for i := range 4096 {
				if err := os.Symlink(fmt.Sprintf("vmsst-%d", i), filepath.Join(m.UIDDir, strconv.Itoa(AdminUIDBase+i))); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				name, uid := "vmsst-x", AdminUIDBase+4096+i%1000
				if err := os.Symlink(name, filepath.Join(m.UIDDir, strconv.Itoa(uid))); err != nil {
					b.Fatal(err)
				}
				if !known {
					uid = 0
				}
				if err := m.releaseUID(name, uid); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
