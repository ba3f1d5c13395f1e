package instance

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vmss-emulator/vmss/internal/mountinfo"
	"github.com/vmss-emulator/vmss/nsnet"
)

// Namespace kinds kept as bind mounts under RuntimeDir/instances/<name>/.
var nsKinds = []struct {
	file string
	flag int
}{{"mnt", unix.CLONE_NEWNS}, {"uts", unix.CLONE_NEWUTS}}

// sysctls set in every instance's network namespace. The admin account has
// no sudo inside an instance, so, as Docker does for containers, it may bind
// ports below 1024 (e.g. a web server on :80 behind a load balancer probe)
// and open ICMP echo sockets (ping without privileges).
var netnsSysctls = []struct{ key, value string }{
	{"net/ipv4/ip_unprivileged_port_start", "0"},
	{"net/ipv4/ping_group_range", "0 2147483647"},
}

// tmpfsMount is a private tmpfs of an instance, capped at size bytes (0:
// the kernel's default, half of the RAM).
type tmpfsMount struct {
	dir  string
	size int64
}

// bindMount makes host path src (a state file or directory) appear at dst
// inside the instance.
type bindMount struct{ src, dst string }

// nsPlan is what buildNamespaces sets up.
type nsPlan struct {
	name     string
	netns    string // existing network namespace to join; "" creates /run/netns/<name>
	hostname string
	binds    []bindMount
	tmpfs    []tmpfsMount // private world-writable directories (mode 1777)
	// nsDirs are the daemon's mount points of namespace bind mounts and
	// instance files (/run/netns, RuntimeDir/instances, RuntimeDir/etc);
	// each is detached from the new mount namespace at once.
	nsDirs []string
}

// runtimeTmpfsSource names the tmpfs of RuntimeDir/instances and RuntimeDir/etc (the source
// field of its mount), which holds a daemon's namespace pins.
const runtimeTmpfsSource = "vmss"

// isNsfs reports whether path is a namespace bind mount.
func isNsfs(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// nsID identifies a namespace (the inode of its nsfs file).
type nsID struct{ dev, ino uint64 }

func nsIDOf(path string) (nsID, bool) {
	var st unix.Stat_t
	if !isNsfs(path) || unix.Stat(path, &st) != nil {
		return nsID{}, false
	}
	return nsID{uint64(st.Dev), st.Ino}, true
}

// buildNamespaces creates the instance's mount and UTS namespaces (and its
// network namespace unless plan.netns names one) and pins them with bind
// mounts on RuntimeDir/instances/<name>/{mnt,uts}.
//
// The work runs on a dedicated OS thread of this process, with no helper
// process: the thread enters the network namespace, unshares mount and UTS
// namespaces (which also gives it its own root and working directory), sets
// up the mounts and the host name, and waits while another thread, still in
// the host's mount namespace, bind-mounts /proc/<pid>/task/<tid>/ns/*. The
// thread stays locked and is discarded by the Go runtime when its goroutine
// returns, so no other goroutine ever runs in these namespaces.
func (m *Manager) buildNamespaces(plan nsPlan) (createdNet bool, err error) {
	type result struct {
		tid        int
		createdNet bool
		err        error
	}
	tmpl, done := m.acquireTemplate(plan.nsDirs)
	defer done()
	resc := make(chan result, 1)
	release := make(chan struct{})
	go onDisposableThread(func() {
		created, err := setupThread(plan, tmpl)
		resc <- result{unix.Gettid(), created, err}
		if err == nil {
			<-release
		}
	})
	r := <-resc
	defer close(release)
	if r.err != nil {
		return r.createdNet, fmt.Errorf("set up namespaces of instance %s: %w", plan.name, r.err)
	}
	var bound []string
	for _, k := range nsKinds {
		src := fmt.Sprintf("/proc/%d/task/%d/ns/%s", os.Getpid(), r.tid, k.file)
		dst := m.nsFile(plan.name, k.file)
		if err := bindNsFile(src, dst); err != nil {
			for _, b := range bound {
				_ = unmountAndRemove(b)
			}
			return r.createdNet, fmt.Errorf("pin namespaces of instance %s: %w", plan.name, err)
		}
		bound = append(bound, dst)
	}
	return r.createdNet, nil
}

// onDisposableThread runs fn on an OS thread of its own that ends with fn,
// so fn may move the thread into other namespaces for good. Call it as the
// body of a new goroutine (go onDisposableThread(fn)).
//
// A goroutine that returns while locked to its thread takes the thread with
// it, except the main thread, which the runtime keeps (parked) forever: a
// main thread left in an instance's namespaces would pin them and change
// what /proc/self shows for the whole process. So when the goroutine lands on
// the main thread, it holds that thread, untouched, while another goroutine,
// which therefore cannot get the main thread, does the work.
func onDisposableThread(fn func()) {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		done := make(chan struct{})
		go func() {
			defer close(done)
			onDisposableThread(fn)
		}()
		<-done
		runtime.UnlockOSThread() // unchanged, safe to reuse
		return
	}
	fn() // the thread stays locked: the runtime ends it when this goroutine returns
}

// setupThread runs on a disposable thread; see buildNamespaces. tmpl is
// an open mount namespace to copy the instance's from (see
// acquireTemplate), or -1 to copy the daemon's own.
func setupThread(plan nsPlan, tmpl int) (createdNet bool, err error) {
	if plan.netns == "" {
		h, err := netns.NewNamed(plan.name)
		if err != nil {
			path := filepath.Join(netnsDir, plan.name)
			if !errors.Is(err, unix.EEXIST) && !isNsfs(path) {
				_ = os.Remove(path) // the file NewNamed created before its bind mount failed
			}
			return false, fmt.Errorf("create network namespace %s: %w", path, err)
		}
		h.Close()
		createdNet = true
	} else if err := setnsPath(plan.netns, unix.CLONE_NEWNET); err != nil {
		return false, err
	}
	if err := setupNetns(); err != nil {
		return createdNet, err
	}
	// From a template: clone the bind sources here, in the daemon's mount
	// namespace (the template has no RuntimeDir/instances), as detached
	// mounts, then enter the template, whose copy becomes the instance's.
	// A clone costs in proportion to the mounts on the source's mount (the
	// kernel looks through them for locked ones): so the generated /etc
	// files live on RuntimeDir/etc, on which nothing is mounted, not beside
	// the namespace pins on RuntimeDir/instances (where instances made by
	// earlier versions still have them); and sources that share a
	// directory are cloned once, as that directory, and bound from the
	// clone in the new namespace.
	var groups []cloneGroup
	if tmpl >= 0 {
		// setns into a mount namespace needs a root and working directory
		// of the thread's own.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return createdNet, fmt.Errorf("unshare file system attributes: %w", err)
		}
		groups = groupBinds(plan.binds)
		for i, g := range groups {
			fd, err := unix.OpenTree(unix.AT_FDCWD, g.src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
			if err != nil {
				return createdNet, fmt.Errorf("clone %s: %w", g.src, err)
			}
			defer unix.Close(fd)
			groups[i].fd = fd
		}
		if err := unix.Setns(tmpl, unix.CLONE_NEWNS); err != nil {
			return createdNet, fmt.Errorf("enter the template mount namespace: %w", err)
		}
	}
	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_NEWUTS); err != nil {
		return createdNet, fmt.Errorf("unshare mount and UTS namespaces: %w", err)
	}
	if err := ensureNewerMountNamespace(); err != nil {
		return createdNet, err
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return createdNet, fmt.Errorf("make / private: %w", err)
	}
	if tmpl >= 0 {
		for _, g := range groups {
			if err := g.attach(); err != nil {
				return createdNet, err
			}
		}
	} else {
		// Open the bind sources before mounting anything: a mount over /tmp,
		// /home or /root would hide a StateDir placed there. (They must be opened
		// in the new namespace: a bind source from another one is refused.)
		srcs := make([]int, len(plan.binds))
		for i, b := range plan.binds {
			fd, err := unix.Open(b.src, unix.O_PATH|unix.O_CLOEXEC, 0)
			if err != nil {
				return createdNet, fmt.Errorf("open %s: %w", b.src, err)
			}
			defer unix.Close(fd)
			srcs[i] = fd
		}
		for i, b := range plan.binds {
			if err := unix.Mount("/proc/self/fd/"+strconv.Itoa(srcs[i]), b.dst, "", unix.MS_BIND, ""); err != nil {
				return createdNet, fmt.Errorf("bind %s on %s: %w", b.src, b.dst, err)
			}
		}
	}
	// After the binds: the generated /etc files live on RuntimeDir/etc,
	// which goes now with RuntimeDir/instances (the binds stay).
	if err := detachNamespaceMounts(plan.nsDirs); err != nil {
		return createdNet, err
	}
	for _, t := range plan.tmpfs {
		if err := mountTmpfs(t); err != nil {
			return createdNet, err
		}
	}
	// A fresh sysfs shows the network devices of the thread's network
	// namespace in /sys/class/net.
	if err := unix.Mount("sysfs", "/sys", "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return createdNet, fmt.Errorf("mount sysfs on /sys: %w", err)
	}
	// A fresh procfs, through which the network sysctls are written: every
	// network namespace that looked up /proc/sys/net through one procfs
	// mount leaves its own entries under the same names there, so a lookup
	// through the daemon's /proc costs time in proportion to the instances
	// (2 ms a write at 4,000), and through a new mount it does not. The
	// instance's init mounts its own procfs over it.
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return createdNet, fmt.Errorf("mount proc on /proc: %w", err)
	}
	if err := writeNetnsSysctls(); err != nil {
		return createdNet, err
	}
	if err := unix.Sethostname([]byte(plan.hostname)); err != nil {
		return createdNet, fmt.Errorf("set hostname %q: %w", plan.hostname, err)
	}
	return createdNet, nil
}

// cloneGroup is what one clone of the daemon's mounts serves: a bind whose
// source is the clone's (dir false), or the binds of files of one directory,
// the clone's source (dir true).
type cloneGroup struct {
	src   string
	dir   bool
	binds []bindMount
	fd    int // the clone (open_tree), once made
}

// groupBinds groups binds by the directory of their sources: a directory
// with two binds or more is cloned once; other binds are cloned alone. The
// order of binds is kept within a group, and groups come in the order of
// their first bind.
func groupBinds(binds []bindMount) []cloneGroup {
	n := map[string]int{}
	for _, b := range binds {
		n[filepath.Dir(b.src)]++
	}
	var out []cloneGroup
	at := map[string]int{}
	for _, b := range binds {
		d := filepath.Dir(b.src)
		if n[d] < 2 {
			out = append(out, cloneGroup{src: b.src, binds: []bindMount{b}})
			continue
		}
		i, ok := at[d]
		if !ok {
			i = len(out)
			at[d] = i
			out = append(out, cloneGroup{src: d, dir: true})
		}
		out[i].binds = append(out[i].binds, b)
	}
	return out
}

// stagingDir is where a cloned directory is attached in a new mount
// namespace while its files are bound from it: /sys, which gets a fresh
// sysfs afterwards.
const stagingDir = "/sys"

// attach mounts the group's clone in the current (new, private) mount
// namespace: a clone of a bind's source on its destination; a cloned
// directory on stagingDir for as long as its files are bound from it.
func (g cloneGroup) attach() error {
	if !g.dir {
		b := g.binds[0]
		if err := unix.MoveMount(g.fd, "", unix.AT_FDCWD, b.dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("bind %s on %s: %w", b.src, b.dst, err)
		}
		return nil
	}
	if err := unix.MoveMount(g.fd, "", unix.AT_FDCWD, stagingDir, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach a clone of %s on %s: %w", g.src, stagingDir, err)
	}
	for _, b := range g.binds {
		if err := unix.Mount(filepath.Join(stagingDir, filepath.Base(b.src)), b.dst, "", unix.MS_BIND, ""); err != nil {
			_ = unix.Unmount(stagingDir, unix.MNT_DETACH)
			return fmt.Errorf("bind %s on %s: %w", b.src, b.dst, err)
		}
	}
	if err := unix.Unmount(stagingDir, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the clone of %s from %s: %w", g.src, stagingDir, err)
	}
	return nil
}

// nsGetMntnsID is the NS_GET_MNTNS_ID ioctl (linux/nsfs.h): the 64-bit id
// of the mount namespace of an nsfs file.
const nsGetMntnsID = 0x8008b705

// mntnsID returns the id of the mount namespace at path (an nsfs file).
func mntnsID(path string) (uint64, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var id uint64
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), nsGetMntnsID, uintptr(unsafe.Pointer(&id))); errno != 0 {
		return 0, errno
	}
	return id, nil
}

// ensureNewerMountNamespace makes sure the mount namespace the calling
// thread has just unshared has a higher id than the process's own, and
// unshares it again, on each CPU the process may use in turn, until it has.
//
// The kernel refuses (EINVAL) to bind-mount a mount namespace's file from
// a mount namespace whose id is not lower than that one's (mnt_ns_loop in
// fs/namespace.c: a namespace could otherwise pin itself, or an ancestor,
// in a loop). Ids used to be global and increasing, so a namespace made
// later was always newer. Kernels that hand ids out in per-CPU batches
// (6.18 and later) may give a namespace made later on one CPU a lower id
// than the process's namespace made earlier on another. The host's initial
// mount namespace has the lowest id, so this matters when the daemon runs
// in a mount namespace of its own (unshare -m, a container, a systemd
// service with private mounts): pinning the instance's namespace then
// failed at random. A later id on the CPU where the process's namespace was
// made is always higher, so some CPU answers unless the process may no
// longer run there.
//
// Kernels without the ioctl have the global, increasing ids.
func ensureNewerMountNamespace() error {
	own, err := mntnsID("/proc/self/ns/mnt")
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("id of the daemon's mount namespace: %w", err)
	}
	newer := func() (bool, error) {
		id, err := mntnsID("/proc/thread-self/ns/mnt")
		if err != nil {
			return false, fmt.Errorf("id of the new mount namespace: %w", err)
		}
		return id > own, nil
	}
	if ok, err := newer(); ok || err != nil {
		return err
	}
	// The CPUs of the process's main thread: this thread's own set may be
	// narrower.
	var allowed, mine unix.CPUSet
	if err := unix.SchedGetaffinity(os.Getpid(), &allowed); err != nil {
		return fmt.Errorf("CPUs of the process: %w", err)
	}
	if err := unix.SchedGetaffinity(0, &mine); err != nil {
		return fmt.Errorf("CPUs of the thread: %w", err)
	}
	defer unix.SchedSetaffinity(0, &mine) //nolint:errcheck // the thread is discarded anyway
	for cpu := range len(allowed) * 64 {
		if !allowed.IsSet(cpu) {
			continue
		}
		var one unix.CPUSet
		one.Set(cpu)
		if unix.SchedSetaffinity(0, &one) != nil {
			continue // offline meanwhile
		}
		// Nothing is mounted yet: the copy of the copy is the same tree,
		// and the namespace it replaces goes with it.
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("unshare the mount namespace again: %w", err)
		}
		if ok, err := newer(); ok || err != nil {
			return err
		}
	}
	return fmt.Errorf("the kernel gave the instance's mount namespace a lower id than the daemon's (%d) on every CPU the daemon may use, "+
		"so it cannot be pinned from the daemon's mount namespace; allow the daemon the CPU it started on, or run it in the host's mount namespace", own)
}

// setupNetns brings lo up in the thread's network namespace. It is
// idempotent.
func setupNetns() error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}

// writeNetnsSysctls sets netnsSysctls in the thread's network namespace,
// through the /proc of the thread's mount namespace. It is idempotent.
func writeNetnsSysctls() error {
	for _, s := range netnsSysctls {
		// /proc/sys/net resolves to the network namespace of the calling thread.
		if err := os.WriteFile("/proc/sys/"+s.key, []byte(s.value), 0); err != nil {
			return fmt.Errorf("sysctl %s: %w", s.key, err)
		}
	}
	return nil
}

// detachNamespaceMounts removes, from the thread's new mount namespace, the
// copies of the host's namespace bind mounts (other instances' /run/netns and
// RuntimeDir/instances entries, and anyone else's). A copy would pin that namespace:
// a deleted instance's network namespace, with its interfaces, would live on
// as long as this instance. The directories in dirs that are mount points go
// with one unmount each (every unmount waits for an RCU grace period, so one
// per instance would make creating n instances O(n²)); stray nsfs mounts
// elsewhere go one by one.
func detachNamespaceMounts(dirs []string) error {
	ms, err := mountinfo.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return err
	}
	detach := func(path string) error {
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil &&
			!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("detach copy of %s: %w", path, err)
		}
		return nil
	}
	parent := map[int]int{}
	for _, mt := range ms {
		parent[mt.ID] = mt.ParentID
	}
	gone := map[int]bool{} // mounts detached with their subtrees
	for _, d := range dirs {
		for _, mt := range ms {
			if mt.MountPoint == d { // one unmount per stacked layer
				if err := detach(d); err != nil {
					return err
				}
				gone[mt.ID] = true
			}
		}
	}
	// The RuntimeDir/instances of other daemons (other prefixes), with
	// their instances' pins: one unmount each rather than one per pin.
	// (Not the instance's own files bound from there: their root is a file.)
	for _, mt := range ms {
		if mt.FSType == "tmpfs" && mt.Source == runtimeTmpfsSource && mt.Root == "/" && !gone[mt.ID] {
			if err := detach(mt.MountPoint); err != nil {
				return err
			}
			gone[mt.ID] = true
		}
	}
	inGone := func(id int) bool {
		for seen := 0; seen < len(ms); seen++ {
			if gone[id] {
				return true
			}
			p, ok := parent[id]
			if !ok || p == id {
				return false
			}
			id = p
		}
		return false
	}
	// Stray nsfs mounts, including any that were hidden below a detached
	// directory (mounted there before it became a mount point).
	for _, mt := range ms {
		if mt.FSType == "nsfs" && !inGone(mt.ID) {
			if err := detach(mt.MountPoint); err != nil {
				return err
			}
		}
	}
	return nil
}

func setnsPath(path string, flag int) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, flag); err != nil {
		return fmt.Errorf("enter namespace %s: %w", path, err)
	}
	return nil
}

// setHostname changes the host name in the UTS namespace pinned at utsPath,
// from a thread that is discarded afterwards.
func setHostname(utsPath, hostname string) error {
	errc := make(chan error, 1)
	go onDisposableThread(func() {
		err := setnsPath(utsPath, unix.CLONE_NEWUTS)
		if err == nil {
			err = unix.Sethostname([]byte(hostname))
		}
		errc <- err
	})
	if err := <-errc; err != nil {
		return fmt.Errorf("set hostname %q in %s: %w", hostname, utsPath, err)
	}
	return nil
}

// bindNsFile bind-mounts namespace file src on dst, creating dst.
func bindNsFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_RDONLY, 0o400)
	if err != nil {
		return err
	}
	f.Close()
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		_ = os.Remove(dst)
		return fmt.Errorf("bind %s on %s: %w", src, dst, err)
	}
	return nil
}

// unmountAndRemove detaches every mount on path, stacked or covered, and
// removes it. A missing path is fine.
func unmountAndRemove(path string) error { return nsnet.UnmountAndRemove(path) }

// ensureMountPoint makes dir a mount point with the given propagation flags
// (MS_PRIVATE, or MS_SHARED optionally with MS_REC), and returns its path
// with symlinks resolved. A missing mount is a new tmpfs when fstype is
// "tmpfs", else a recursive bind mount of dir on itself.
//
// RuntimeDir/instances is a private tmpfs: a mount namespace can only be
// pinned by a bind mount whose parent mount does not propagate (on systemd
// hosts / is shared). RuntimeDir/etc is another, so the generated /etc
// files are cheap to write whatever backs /run, and cheap to clone (no
// mount is ever made on it). /run/netns is made a shared bind mount by
// nsnet.EnsureRunDir, as `ip netns add` does. Both being mount points lets
// a new instance drop all copies of them at once (see
// detachNamespaceMounts).
func ensureMountPoint(dir, fstype string, propagation uintptr) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	// Lock the parent: a tmpfs mounted on dir has another inode than dir.
	return real, nsnet.WithFlock(filepath.Dir(real), func() error {
		ms, err := mountinfo.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return err
		}
		var top *mountinfo.Mount
		for i := range ms {
			if ms[i].MountPoint == real {
				top = &ms[i]
			}
		}
		if top != nil && top.Shared() == (propagation&unix.MS_SHARED != 0) {
			return nil
		}
		if top == nil {
			var err error
			if fstype == "tmpfs" {
				err = unix.Mount(runtimeTmpfsSource, real, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0711")
			} else {
				err = unix.Mount(real, real, "", unix.MS_BIND|unix.MS_REC, "")
			}
			if err != nil {
				return fmt.Errorf("mount %s on %s: %w", cmpOr(fstype, "bind"), real, err)
			}
		}
		if err := unix.Mount("", real, "", propagation, ""); err != nil {
			return fmt.Errorf("set propagation of %s: %w", real, err)
		}
		return nil
	})
}
