package monitor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/vmss-emulator/vmss/instance/cgroup"
	"github.com/vmss-emulator/vmss/metrics"
	"github.com/vmss-emulator/vmss/vnet"
)

// KernelSampler reads instances' counters from the kernel: CPU time from a
// cgroup that accounts it, memory from the instance's memory cgroup (or the
// host), disk I/O from its io (v2) or blkio (v1) cgroup, bytes from the
// VNET-side veth of each instance.
//
// CPU accounting: on a cgroup v2 host the instance's own group accounts CPU
// time (cpu.stat) and disk I/O (io.stat). On a v1 or hybrid host the group
// that holds an instance's processes (freezer or pids) does not; package
// instance also puts every process of an instance, from its start, in the
// group of the same name in the cgroup2 hierarchy when one is mounted
// (hybrid hosts mount it at /sys/fs/cgroup/unified), whose cpu.stat counts
// them, and in the v1 blkio hierarchy, whose throttle files count their
// disk I/O. The first time the sampler sees an instance it moves into those
// groups any process that is not there yet (an instance made by an older
// daemon); after that it only reads. Those groups are removed with the
// instance (package instance removes its group from every hierarchy) and by
// the sampler, for the ones it made, once the instance is gone.
type KernelSampler struct {
	// Prefix is the instances' name prefix (instance.Manager.Prefix); their
	// cgroup group is <Prefix without trailing "-_.">/<name>.
	Prefix string
	// Processes answers the host pids of an instance's processes
	// (instance.Manager.Processes).
	Processes func(name string) ([]int, error)
	Logger    *slog.Logger

	once     sync.Once
	setupErr error
	cpuRoot  string          // hierarchy dir whose <group> accounts CPU
	move     bool            // v1 host: processes may have to be moved into cpuRoot/<group> and ioRoot/<group>
	memRoot  string          // hierarchy dir with the memory controller ("" for none)
	ioRoot   string          // hierarchy dir whose <group> accounts disk I/O ("" for none)
	seen     map[string]bool // instances whose processes were checked, by name
	made     map[string]bool // accounting groups this sampler made, by instance name
}

func (k *KernelSampler) group(name string) string {
	g := strings.TrimRight(k.Prefix, "-_.")
	if g == "" {
		g = "vmss"
	}
	return g + "/" + name
}

func (k *KernelSampler) setup() error {
	k.once.Do(func() {
		h, err := cgroup.Detect()
		if err != nil {
			k.setupErr = fmt.Errorf("metrics: %w", err)
			return
		}
		if h.Version == cgroup.V2 {
			k.cpuRoot, k.memRoot, k.ioRoot = h.Dir, h.Dir, h.Dir
		} else {
			all, _ := cgroup.All()
			for _, a := range all {
				if a.Version == cgroup.V2 && exists(filepath.Join(a.Dir, "cpu.stat")) {
					k.cpuRoot, k.move = a.Dir, true
					break
				}
			}
			if k.cpuRoot == "" {
				k.setupErr = errors.New("metrics: no cgroup2 hierarchy is mounted, so instance CPU time is not accounted (mount one, e.g. at /sys/fs/cgroup/unified); Percentage CPU has no data")
			}
			if exists("/sys/fs/cgroup/memory/memory.usage_in_bytes") {
				k.memRoot = "/sys/fs/cgroup/memory"
			}
			if exists("/sys/fs/cgroup/blkio/blkio.throttle.io_serviced") {
				k.ioRoot, k.move = "/sys/fs/cgroup/blkio", true
			}
		}
	})
	return k.setupErr
}

// Sample implements Sampler.
func (k *KernelSampler) Sample(ctx context.Context, ins []Instance) (map[string]metrics.Counters, error) {
	return k.SampleSome(ctx, ins, ins)
}

// SampleSome implements PartialSampler: it reads the instances ins, and
// keeps what it remembers (and the accounting groups it made) of every
// instance in all.
func (k *KernelSampler) SampleSome(ctx context.Context, ins, all []Instance) (map[string]metrics.Counters, error) {
	var errs []error
	if err := k.setup(); err != nil {
		errs = append(errs, err)
	}
	links, err := veths(ins)
	errs = append(errs, err)
	reader := metrics.Kernel{Net: func(iface string) (uint64, uint64, bool) {
		l, ok := links[iface]
		return l.rx, l.tx, ok
	}}
	var merr error
	reader.HostAvailable, reader.HostTotal, merr = reader.HostMemory()
	errs = append(errs, merr)
	out := make(map[string]metrics.Counters, len(ins))
	live := make(map[string]bool, len(all))
	for _, in := range all {
		live[in.Name] = true
	}
	if k.seen == nil {
		k.seen = map[string]bool{}
	}
	for _, in := range ins {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		g := k.group(in.Name)
		if !k.seen[in.Name] {
			// once per instance: is it in the kernel yet, and are its
			// processes in the accounting groups?
			pids, err := k.Processes(in.Name)
			if err != nil {
				continue // not (yet) in the kernel
			}
			k.seen[in.Name] = true
			if k.move {
				for _, root := range []string{k.cpuRoot, k.ioRoot} {
					if root != "" {
						k.join(in.Name, filepath.Join(root, g), pids)
					}
				}
			}
		}
		t := metrics.Target{ResourceID: in.ResourceID, Instance: in.ID, VMSize: in.VMSize, HostIface: vnet.VethName(in.Name)}
		if k.cpuRoot != "" {
			t.CPUDir = filepath.Join(k.cpuRoot, g)
		}
		if k.memRoot != "" {
			t.MemoryDir = filepath.Join(k.memRoot, g)
		}
		if k.ioRoot != "" {
			t.IODir = filepath.Join(k.ioRoot, g)
		}
		c, err := reader.Read(t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[in.Name] = c
	}
	for name := range k.seen {
		if !live[name] {
			delete(k.seen, name)
		}
	}
	if k.move {
		k.sweep(live)
	}
	return out, errors.Join(errs...)
}

// join moves pids into the accounting group dir, made when missing (also
// for an instance with no process: its CPU time is then zero, not unknown).
func (k *KernelSampler) join(name, dir string, pids []int) {
	if !exists(dir) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return
		}
		if k.made == nil {
			k.made = map[string]bool{}
		}
		k.made[dir] = true
	}
	if len(pids) == 0 {
		return
	}
	in := map[int]bool{}
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if p, err := strconv.Atoi(f); err == nil {
				in[p] = true
			}
		}
	}
	for _, p := range pids {
		if in[p] {
			continue
		}
		// a process that exited meanwhile fails with ESRCH: nothing to do
		_ = os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(p)), 0)
	}
}

// sweep removes the accounting groups this sampler made for instances that
// are gone (an empty cgroup is removed by rmdir; a busy one is left for the
// next sweep).
func (k *KernelSampler) sweep(live map[string]bool) {
	for dir := range k.made {
		if live[filepath.Base(dir)] {
			continue
		}
		err := os.Remove(dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			delete(k.made, dir)
		}
	}
}

type linkStats struct{ rx, tx uint64 }

// veths reads the byte counters of every link in the instances' VNET
// namespaces, one netlink dump per namespace.
func veths(ins []Instance) (map[string]linkStats, error) {
	out := map[string]linkStats{}
	seen := map[string]bool{}
	var errs []error
	for _, in := range ins {
		if in.VNetNetns == "" || seen[in.VNetNetns] {
			continue
		}
		seen[in.VNetNetns] = true
		ns, err := netns.GetFromName(in.VNetNetns)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("metrics: open namespace %s: %w", in.VNetNetns, err))
			}
			continue
		}
		h, err := netlink.NewHandleAt(ns)
		ns.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("metrics: netlink in %s: %w", in.VNetNetns, err))
			continue
		}
		links, err := h.LinkList()
		h.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("metrics: list links in %s: %w", in.VNetNetns, err))
			continue
		}
		for _, l := range links {
			a := l.Attrs()
			if a.Statistics != nil {
				out[a.Name] = linkStats{rx: a.Statistics.RxBytes, tx: a.Statistics.TxBytes}
			}
		}
	}
	return out, errors.Join(errs...)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
