package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vmss-emulator/vmss/instance/cgroup"
)

// linkPrefix starts the names of the links in the hub namespace, which is
// this process's alone (the inner ends are each instance's eth0).
const linkPrefix = "vmsskf"

// bridgePorts is how many instances share a bridge (a bridge holds 1,023).
const bridgePorts = 1000

type step int

const (
	stepNetns step = iota
	stepSysfs
	stepVeth
	stepCgroup
	nSteps
)

var stepNames = [nSteps]string{"netns", "sysfs", "veth", "cgroup"}

// floor holds what one run made, so that it can be undone.
type floor struct {
	prefix  string
	dir     string // the tmpfs: pins and sysfs mounts
	orig    netns.NsHandle
	hub     netns.NsHandle
	hubLink *netlink.Handle
	bridges []*netlink.Bridge
	hs      []cgroup.Hierarchy
	made    int // instances made and not yet removed: 0 … made-1
}

func main() {
	counts := flag.String("n", "100,1000,4096", "counts to measure, comma-separated")
	prefix := flag.String("prefix", "vmsskf", "name prefix of everything made")
	flag.Parse()
	var ns []int
	for _, s := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "kernelfloor: -n %q: want positive counts like 100,1000,4096\n", *counts)
			os.Exit(2)
		}
		ns = append(ns, n)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "kernelfloor: needs root: sudo go run ./scripts/kernelfloor")
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *prefix, ns); err != nil {
		fmt.Fprintln(os.Stderr, "kernelfloor:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, prefix string, counts []int) (err error) {
	// Namespace switches move the calling thread: everything runs on this one.
	runtime.LockOSThread()
	f, err := setup(prefix)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.teardown(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	var names []string
	for _, h := range f.hs {
		names = append(names, h.Dir)
	}
	fmt.Printf("# kernel floor: per instance a network namespace pinned by a bind mount, its own sysfs, a veth pair on a bridge (%d per bridge) of a hub namespace, a cgroup in %s; one at a time\n",
		bridgePorts, strings.Join(names, ", "))
	fmt.Printf("%-6s %14s %14s %9s %9s %9s %9s %14s\n", "N", "create_cpu_100", "delete_cpu_100", "netns_us", "sysfs_us", "veth_us", "cgroup_us", "delete_us")
	for k, n := range counts {
		if k > 0 {
			// Namespaces are freed by a kernel worker after their last
			// reference goes: let it finish before the next count.
			time.Sleep(3 * time.Second)
		}
		c0 := cpu()
		var wall [nSteps]time.Duration
		for i := 0; i < n; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := f.make(i, &wall); err != nil {
				return fmt.Errorf("instance %d of %d: %w", i+1, n, err)
			}
		}
		c1 := cpu()
		t := time.Now()
		if err := f.removeAll(); err != nil {
			return err
		}
		del := time.Since(t)
		c2 := cpu()
		us := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
		fmt.Printf("%-6d %13.2fs %13.2fs %9.0f %9.0f %9.0f %9.0f %14.0f\n", n,
			(c1-c0).Seconds()*100/float64(n), (c2-c1).Seconds()*100/float64(n),
			us(wall[stepNetns]), us(wall[stepSysfs]), us(wall[stepVeth]), us(wall[stepCgroup]), us(del))
	}
	return nil
}

func cpu() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru) // RUSAGE_SELF with a valid pointer cannot fail
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func setup(prefix string) (*floor, error) {
	f := &floor{prefix: prefix, dir: filepath.Join("/run", fmt.Sprintf("%s-%d", prefix, os.Getpid())), orig: -1, hub: -1}
	fail := func(err error) (*floor, error) {
		if terr := f.teardown(); terr != nil {
			err = errors.Join(err, terr)
		}
		return nil, err
	}
	h, err := cgroup.Detect()
	if err != nil {
		return nil, err
	}
	if f.hs, err = cgroup.GroupHierarchies(h); err != nil {
		return nil, err
	}
	if f.orig, err = netns.Get(); err != nil {
		return nil, fmt.Errorf("open this thread's network namespace: %w", err)
	}
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return fail(err)
	}
	if err := unix.Mount(prefix, f.dir, "tmpfs", 0, "mode=0700"); err != nil {
		return fail(fmt.Errorf("mount a tmpfs on %s: %w", f.dir, err))
	}
	if err := unix.Mount("", f.dir, "", unix.MS_PRIVATE, ""); err != nil {
		return fail(fmt.Errorf("make %s private: %w", f.dir, err))
	}
	for _, h := range f.hs {
		if err := os.Mkdir(h.Path(prefix), 0o755); err != nil {
			return fail(fmt.Errorf("create cgroup %s: %w", h.Path(prefix), err))
		}
	}
	if f.hub, err = netns.New(); err != nil {
		return fail(fmt.Errorf("create the hub network namespace: %w", err))
	}
	if err := netns.Set(f.orig); err != nil {
		return fail(fmt.Errorf("return to the host network namespace: %w", err))
	}
	if f.hubLink, err = netlink.NewHandleAt(f.hub); err != nil {
		return fail(fmt.Errorf("netlink socket in the hub namespace: %w", err))
	}
	return f, nil
}

// make creates instance i, adding each step's wall time to wall.
func (f *floor) make(i int, wall *[nSteps]time.Duration) error {
	t := time.Now()
	lap := func(s step) {
		now := time.Now()
		wall[s] += now.Sub(t)
		t = now
	}
	// The namespace, pinned as the daemon pins its instances'.
	pin := filepath.Join(f.dir, "n"+strconv.Itoa(i))
	if err := os.WriteFile(pin, nil, 0o600); err != nil {
		return err
	}
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare a network namespace: %w", err)
	}
	back := func() error {
		if err := netns.Set(f.orig); err != nil {
			return fmt.Errorf("return to the host network namespace: %w", err)
		}
		return nil
	}
	if err := unix.Mount("/proc/thread-self/ns/net", pin, "", unix.MS_BIND, ""); err != nil {
		return errors.Join(fmt.Errorf("pin the namespace at %s: %w", pin, err), back())
	}
	f.made = i + 1
	lap(stepNetns)
	// Its sysfs, mounted from inside it, as an instance's /sys is.
	sys := filepath.Join(f.dir, "s"+strconv.Itoa(i))
	if err := os.Mkdir(sys, 0o700); err != nil {
		return errors.Join(err, back())
	}
	if err := unix.Mount("sysfs", sys, "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return errors.Join(fmt.Errorf("mount sysfs: %w", err), back())
	}
	if err := back(); err != nil {
		return err
	}
	lap(stepSysfs)
	// The veth pair: outer end on a bridge of the hub, inner end in the
	// instance's namespace.
	br, err := f.bridge(i / bridgePorts)
	if err != nil {
		return err
	}
	nsfd, err := unix.Open(pin, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: linkPrefix + "v" + strconv.FormatInt(int64(i), 36)}, PeerName: "eth0", PeerNamespace: netlink.NsFd(nsfd)}
	err = f.hubLink.LinkAdd(veth)
	unix.Close(nsfd)
	if err != nil {
		return fmt.Errorf("create veth %s: %w", veth.Name, err)
	}
	if err := f.hubLink.LinkSetMasterByIndex(veth, br.Index); err != nil {
		return fmt.Errorf("attach %s to %s: %w", veth.Name, br.Name, err)
	}
	if err := f.hubLink.LinkSetUp(veth); err != nil {
		return fmt.Errorf("set %s up: %w", veth.Name, err)
	}
	lap(stepVeth)
	for _, h := range f.hs {
		if err := os.Mkdir(h.Path(filepath.Join(f.prefix, strconv.Itoa(i))), 0o755); err != nil {
			return err
		}
	}
	lap(stepCgroup)
	return nil
}

// bridge returns the hub's k-th bridge, making it on first use.
func (f *floor) bridge(k int) (*netlink.Bridge, error) {
	if k < len(f.bridges) {
		return f.bridges[k], nil
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: linkPrefix + "b" + strconv.Itoa(k)}}
	if err := f.hubLink.LinkAdd(br); err != nil {
		return nil, fmt.Errorf("create bridge %s: %w", br.Name, err)
	}
	if err := f.hubLink.LinkSetUp(br); err != nil {
		return nil, fmt.Errorf("set %s up: %w", br.Name, err)
	}
	f.bridges = append(f.bridges, br)
	return br, nil
}

// removeAll removes the instances made, newest first: the cgroups, the
// sysfs mount and the pin; the namespace then goes, and its veth pair with
// it (the kernel frees namespaces in batches, on a worker of its own). It
// returns once the hub has no veth left.
func (f *floor) removeAll() error {
	var errs []error
	for i := f.made - 1; i >= 0; i-- {
		for _, h := range f.hs {
			if err := unix.Rmdir(h.Path(filepath.Join(f.prefix, strconv.Itoa(i)))); err != nil && err != unix.ENOENT {
				errs = append(errs, fmt.Errorf("remove cgroup: %w", err))
			}
		}
		for _, p := range []string{"s", "n"} {
			path := filepath.Join(f.dir, p+strconv.Itoa(i))
			if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
				errs = append(errs, fmt.Errorf("unmount %s: %w", path, err))
			}
			_ = os.Remove(path) // on the tmpfs, which goes too
		}
	}
	f.made = 0
	if f.hubLink == nil {
		return errors.Join(errs...)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		links, err := f.hubLink.LinkList()
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("list the hub's links: %w", err))...)
		}
		left := 0
		for _, l := range links {
			if l.Type() == "veth" {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			return errors.Join(append(errs, fmt.Errorf("%d veths still in the hub namespace after 2 minutes", left))...)
		}
	}
	return errors.Join(errs...)
}

// teardown removes everything setup and make made.
func (f *floor) teardown() error {
	errs := []error{f.removeAll()}
	if f.hubLink != nil {
		f.hubLink.Close() // the hub goes with its last reference, its bridges with it
	}
	if f.hub >= 0 {
		f.hub.Close()
	}
	if f.orig >= 0 {
		f.orig.Close()
	}
	for _, h := range f.hs {
		if err := unix.Rmdir(h.Path(f.prefix)); err != nil && err != unix.ENOENT {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", h.Path(f.prefix), err))
		}
	}
	if err := unix.Unmount(f.dir, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		errs = append(errs, fmt.Errorf("unmount %s: %w", f.dir, err))
	}
	if err := os.Remove(f.dir); err != nil && !os.IsNotExist(err) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
