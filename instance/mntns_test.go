package instance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// olderNsEnv marks the re-executed child of
// TestCreateWhereNewNamespacesGetLowerIDs.
const olderNsEnv = "VMSS_INSTANCE_TEST_HIGH_ID_NS"

// conditionUnmet is what the child prints when the kernel gives every new
// mount namespace a higher id than its own (global, increasing ids).
const conditionUnmet = "kernel gives increasing mount namespace ids"

// newMntnsIDOn returns the id a mount namespace made on cpu gets (-1: any
// CPU), from a disposable thread.
func newMntnsIDOn(cpu int) (uint64, error) {
	type res struct {
		id  uint64
		err error
	}
	c := make(chan res, 1)
	go onDisposableThread(func() {
		if cpu >= 0 {
			var one unix.CPUSet
			one.Set(cpu)
			if err := unix.SchedSetaffinity(0, &one); err != nil {
				c <- res{0, err}
				return
			}
		}
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			c <- res{0, err}
			return
		}
		id, err := mntnsID("/proc/thread-self/ns/mnt")
		c <- res{id, err}
	})
	r := <-c
	return r.id, r.err
}

// TestCreateWhereNewNamespacesGetLowerIDs creates instances from a daemon
// whose own mount namespace has a higher id than the namespaces made next
// on the CPU its threads run on. Kernels hand mount namespace ids out in
// per-CPU batches, so this happens to a daemon in a mount namespace of its
// own (unshare -m, as the fresh-host end-to-end test runs it) whenever that
// namespace was made on another CPU; pinning the instance's namespace then
// failed with EINVAL (the kernel's mount namespace loop check).
//
// The parent finds the CPU whose batch is ahead (hi) and the one behind
// (lo), runs the test binary in a private mount namespace made on hi, and
// the child pins every thread but the main one to lo.
func TestCreateWhereNewNamespacesGetLowerIDs(t *testing.T) {
	if os.Getenv(olderNsEnv) != "" {
		createFromHighIDNamespace(t)
		return
	}
	skipUnlessRoot(t)
	for _, tool := range []string{"unshare", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (util-linux)", tool)
		}
	}
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		t.Fatal(err)
	}
	var cpus []string
	hi, lo := -1, -1
	var hiID, loID uint64
	for cpu := range len(allowed) * 64 {
		if !allowed.IsSet(cpu) {
			continue
		}
		cpus = append(cpus, strconv.Itoa(cpu))
		id, err := newMntnsIDOn(cpu)
		if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
			t.Skip("the kernel has no NS_GET_MNTNS_ID: its mount namespace ids are global and increasing")
		}
		if err != nil {
			t.Fatal(err)
		}
		if hi < 0 || id > hiID {
			hi, hiID = cpu, id
		}
		if lo < 0 || id < loID {
			lo, loID = cpu, id
		}
	}
	if len(cpus) < 2 {
		t.Skip("needs two CPUs")
	}
	t.Logf("new mount namespace ids: CPU %d %d, CPU %d %d", hi, hiID, lo, loID)
	cmd := exec.Command("taskset", "-c", strconv.Itoa(hi), "unshare", "-m", "--propagation", "private", "--",
		"taskset", "-c", strings.Join(cpus, ","), os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), olderNsEnv+"="+strconv.Itoa(lo))
	out, err := cmd.CombinedOutput()
	if strings.Contains(string(out), conditionUnmet) {
		t.Skipf("%s:\n%s", conditionUnmet, out)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("in a mount namespace made on CPU %d: %v\n%s", hi, err, out)
	}
	t.Logf("%s", out)
}

func createFromHighIDNamespace(t *testing.T) {
	lo, err := strconv.Atoi(os.Getenv(olderNsEnv))
	if err != nil {
		t.Fatal(err)
	}
	own, err := mntnsID("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	// Every thread but the main one (which keeps the process's CPUs) runs on
	// lo, so the namespaces of the instances are made there. Threads made
	// later are cloned from these and inherit it.
	pinThreads := func() {
		var one unix.CPUSet
		one.Set(lo)
		for range 2 {
			ents, err := os.ReadDir("/proc/self/task")
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				if tid, _ := strconv.Atoi(e.Name()); tid != os.Getpid() {
					_ = unix.SchedSetaffinity(tid, &one)
				}
			}
		}
	}
	pinThreads()
	// The condition: a namespace made now has a lower id than this one.
	probe, err := newMntnsIDOn(-1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("own mount namespace id %d, a new one's on CPU %d: %d", own, lo, probe)
	if probe > own {
		t.Skip(conditionUnmet)
	}
	// Positive control: pinning a namespace made without the check fails
	// as the instances' did.
	raw := make(chan int, 1)
	release := make(chan struct{})
	go onDisposableThread(func() {
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			raw <- 0
			return
		}
		raw <- unix.Gettid()
		<-release
	})
	tid := <-raw
	if tid == 0 {
		t.Fatal("unshare failed")
	}
	dst := filepath.Join(t.TempDir(), "mnt")
	err = bindNsFile(fmt.Sprintf("/proc/%d/task/%d/ns/mnt", os.Getpid(), tid), dst)
	close(release)
	if !errors.Is(err, unix.EINVAL) {
		_ = unmountAndRemove(dst)
		t.Fatalf("pinning a mount namespace with a lower id: %v, want EINVAL", err)
	}

	m := newTestManager(t)
	pinThreads()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Go(func() { errs <- m.Create(ctx, testSpec(m, "n"+strconv.Itoa(i))) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		return
	}
	for i := range 4 {
		name := m.Prefix + "n" + strconv.Itoa(i)
		if got := run(t, m, name, ExecRequest{Argv: []string{"cat", "/proc/sys/kernel/hostname"}}); got != "host-n"+strconv.Itoa(i) {
			t.Errorf("%s: hostname %q", name, got)
		}
	}
	runtime.KeepAlive(own)
}

// A new instance's mount namespace has none of the namespace pins of the
// host: neither those of the Manager's other instances nor another
// daemon's (another prefix and RuntimeDir, whose RuntimeDir/instances is
// not even mounted there); it is copied from a template.
func TestMountNamespaceFromTemplate(t *testing.T) {
	m := newTestManager(t)
	other := newTestManager(t)
	create(t, other, testSpec(other, "o"))
	a := create(t, m, testSpec(m, "a"))
	m.tmplMu.Lock()
	made, off := m.tmpl != nil, m.tmplOff
	m.tmplMu.Unlock()
	if off {
		t.Skip("no template mount namespaces on this kernel")
	}
	if !made {
		t.Error("no template mount namespace after Create")
	}
	for _, s := range []string{"b", "c"} {
		create(t, m, testSpec(m, s))
	}
	for _, name := range []string{a.Name, m.Prefix + "c"} {
		script := "grep -c nsfs /proc/self/mountinfo; grep -c ' " + other.runRoot() + " ' /proc/self/mountinfo"
		if got := run(t, m, name, ExecRequest{Argv: []string{"sh", "-c", script + "; true"}}); got != "0\n0" {
			t.Errorf("instance %s: namespace bind mounts and mounts of the other daemon's %s: %q, want none", name, other.runRoot(), got)
		}
	}
	// Positive control: the host's namespace holds both.
	if n := len(mountLines(t, "nsfs")); n < 2*4 {
		t.Errorf("the host shows %d nsfs mounts, want at least those of the 4 instances", n)
	}
	if len(mountLines(t, " "+other.runRoot()+" ")) == 0 {
		t.Errorf("%s is not a mount point on the host", other.runRoot())
	}
}

// The binds of an instance clone the daemon's mounts once per directory of
// sources (the generated /etc files, the state directory's), not once per
// file: a clone costs in proportion to the mounts on RuntimeDir/instances,
// which grow with the instances.
func TestGroupBinds(t *testing.T) {
	binds := []bindMount{
		{"/run/v/instances/a/etc/hostname", "/etc/hostname"},
		{"/run/v/instances/a/etc/hosts", "/etc/hosts"},
		{"/state/a/home", "/home"},
		{"/other/x", "/x"},
		{"/run/v/instances/a/etc/passwd", "/etc/passwd"},
		{"/state/a/root", "/root"},
	}
	got := groupBinds(binds)
	want := []cloneGroup{
		{src: "/run/v/instances/a/etc", dir: true, binds: []bindMount{binds[0], binds[1], binds[4]}},
		{src: "/state/a", dir: true, binds: []bindMount{binds[2], binds[5]}},
		{src: "/other/x", binds: []bindMount{binds[3]}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("groupBinds =\n%v\nwant\n%v", got, want)
	}
}
