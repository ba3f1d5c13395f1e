package nsnet

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// privateEnv marks a test re-executed in a private mount namespace.
const privateEnv = "VMSS_NSNET_PRIVATE_MOUNTS"

// inPrivateMounts re-executes the calling test in a private mount namespace
// (unshare -m --propagation private) and reports true there; in the parent
// it runs the child, fails t if it failed, and reports false.
func inPrivateMounts(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if os.Getenv(privateEnv) != "" {
		return true
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare (util-linux)")
	}
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "--", os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v")
	cmd.Env = append(os.Environ(), privateEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("%s in a private mount namespace: %v\n%s", t.Name(), err, out)
	}
	return false
}

// mountsOn lists the mountinfo lines whose mount point is path.
func mountsOn(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == path {
			out = append(out, l)
		}
	}
	return out
}

// makeRunDirPlain unmounts RunDir in this (private) mount namespace: the
// state of a freshly booted host.
func makeRunDirPlain(t *testing.T) {
	for range 16 {
		if unix.Unmount(RunDir, unix.MNT_DETACH) != nil {
			break
		}
	}
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if m := mountsOn(t, RunDir); len(m) != 0 {
		t.Fatalf("%s is still a mount point: %v", RunDir, m)
	}
}

func randName() string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	return "vmsst" + hex.EncodeToString(r[:])
}

// TestCreateMakesRunDirSharedFirst: on a fresh host the namespace is
// mounted on RunDir made a shared mount point first, so no mount is covered.
func TestCreateMakesRunDirSharedFirst(t *testing.T) {
	if !inPrivateMounts(t) {
		return
	}
	makeRunDirPlain(t)
	name := randName()
	if err := Create(name); err != nil {
		t.Fatal(err)
	}
	top := mountsOn(t, RunDir)
	if len(top) != 1 || !strings.Contains(top[0], "shared:") {
		t.Errorf("%s after Create: %v, want one shared mount", RunDir, top)
	}
	if m := mountsOn(t, Path(name)); len(m) != 1 {
		t.Errorf("mounts on %s: %v, want exactly one", Path(name), m)
	}
	if err := Remove(name); err != nil {
		t.Fatal(err)
	}
	if m := mountsOn(t, Path(name)); len(m) != 0 {
		t.Errorf("mounts left on %s: %v", Path(name), m)
	}
}

// TestRemoveCoveredNamespace: a namespace mounted in RunDir before RunDir
// became a mount point (the order of old versions on a fresh host) is
// covered; Remove still unmounts it and removes the file.
func TestRemoveCoveredNamespace(t *testing.T) {
	if !inPrivateMounts(t) {
		return
	}
	makeRunDirPlain(t)
	name := randName()
	path := Path(name)
	if err := os.WriteFile(path, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("unshare", "--net="+path, "true").CombinedOutput(); err != nil {
		t.Fatalf("unshare --net=%s: %v %s", path, err, out)
	}
	if err := EnsureRunDir(); err != nil { // covers the first mount
		t.Fatal(err)
	}
	if m := mountsOn(t, path); len(m) != 2 {
		t.Fatalf("mounts on %s: %v, want the covered one and its copy", path, m)
	}
	// Positive control: unmounting what the path reaches is not enough.
	for unix.Unmount(path, unix.MNT_DETACH) == nil {
	}
	if err := os.Remove(path); !errors.Is(err, unix.EBUSY) {
		t.Fatalf("remove of a covered mount point: %v, want EBUSY", err)
	}
	if err := Remove(name); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if m := mountsOn(t, path); len(m) != 0 {
		t.Errorf("mounts left on %s: %v", path, m)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists: %v", path, err)
	}
}
