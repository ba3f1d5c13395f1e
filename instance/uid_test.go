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

// Two Managers share the claims directory: each one's index misses the
// other's newer claims, and still no uid is handed out twice; a release by
// one is seen by the other.
func TestClaimUIDStaleIndex(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "uids")
	a := &Manager{Prefix: "vmssa-", UIDDir: dir}
	b := &Manager{Prefix: "vmssb-", UIDDir: dir}
	seen := map[int]string{}
	for i := range 20 {
		m, name := a, "vmssa-"+strconv.Itoa(i)
		if i%3 == 0 {
			m, name = b, "vmssb-"+strconv.Itoa(i)
		}
		uid, err := m.claimUID(name, 0)
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := seen[uid]; dup {
			t.Fatalf("uid %d handed to %s and %s", uid, prev, name)
		}
		seen[uid] = name
		if owner, err := os.Readlink(filepath.Join(dir, strconv.Itoa(uid))); err != nil || owner != name {
			t.Fatalf("claim of %d = %q, %v; want %s", uid, owner, err, name)
		}
	}
	if len(seen) != 20 {
		t.Fatalf("%d uids for 20 instances", len(seen))
	}
	// b's claim released by b is not found by a as a's.
	if err := b.releaseUID("vmssb-0"); err != nil {
		t.Fatal(err)
	}
	if err := a.releaseUID("vmssb-0"); err != nil {
		t.Fatal(err)
	}
	// Each Manager finds its own claims again, and a released one is gone.
	for uid, name := range seen {
		m := a
		if strings.HasPrefix(name, "vmssb-") {
			m = b
		}
		got, err := m.claimUID(name, 0)
		want := uid
		if name == "vmssb-0" {
			want = got // claimed anew
		}
		if err != nil || got != want {
			t.Errorf("claim again of %s = %d, %v; want %d", name, got, err, want)
		}
	}
}

// Claiming one more uid costs the same whatever the number of claims (the
// index, not a read of every claim).
func BenchmarkClaimUID(b *testing.B) {
	for _, n := range []int{100, 4000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			m := &Manager{Prefix: "vmssbench-", UIDDir: filepath.Join(b.TempDir(), "uids")}
			for i := range n {
				if _, err := m.claimUID("vmssbench-"+strconv.Itoa(i), 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				name := "vmssbench-x" + strconv.Itoa(i)
				if _, err := m.claimUID(name, 0); err != nil {
					b.Fatal(err)
				}
				if err := m.releaseUID(name); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
