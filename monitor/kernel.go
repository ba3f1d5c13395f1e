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
// host), bytes from the VNET-side veth of each instance.
//
// CPU accounting: on a cgroup v2 host the instance's own group accounts CPU
// time (cpu.stat). On a v1 or hybrid host the group that holds an instance's
// processes (freezer or pids) does not; when a cgroup2 hierarchy is mounted
// (hybrid hosts mount it at /sys/fs/cgroup/unified), every sample moves the
// instance's processes into the group of the same name there, whose cpu.stat
// then counts them and every process they start. A process that starts and
// ends between two samples is not counted. Those groups are removed with the
// instance (package instance removes its group from every cgroup2
// hierarchy) and by the sampler once the instance is gone.
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
	move     bool            // processes must be moved into cpuRoot/<group>
	memRoot  string          // hierarchy dir with the memory controller ("" for none)
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
			k.cpuRoot = h.Dir
			k.memRoot = h.Dir
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
		}
	})
	return k.setupErr
}

// Sample implements Sampler.
func (k *KernelSampler) Sample(ctx context.Context, ins []Instance) (map[string]metrics.Counters, error) {
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
	live := map[string]bool{}
	for _, in := range ins {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		live[in.Name] = true
		pids, err := k.Processes(in.Name)
		if err != nil {
			continue // not (yet) in the kernel
		}
		t := metrics.Target{ResourceID: in.ResourceID, Instance: in.ID, VMSize: in.VMSize, HostIface: vnet.VethName(in.Name)}
		g := k.group(in.Name)
		if k.cpuRoot != "" {
			dir := filepath.Join(k.cpuRoot, g)
			if k.move {
				k.join(in.Name, dir, pids)
			}
			t.CPUDir = dir
		}
		if k.memRoot != "" && exists(filepath.Join(k.memRoot, g)) {
			t.MemoryDir = filepath.Join(k.memRoot, g)
		}
		c, err := reader.Read(t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[in.Name] = c
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
		k.made[name] = true
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
	for name := range k.made {
		if live[name] {
			continue
		}
		err := os.Remove(filepath.Join(k.cpuRoot, k.group(name)))
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			delete(k.made, name)
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
