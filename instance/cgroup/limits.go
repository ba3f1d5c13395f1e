package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/vmss-emulator/vmss/internal/mountinfo"
)

// Limits are the resource limits of a group. A zero field sets no limit.
type Limits struct {
	// Pids caps the number of processes and threads (pids.max).
	Pids int64
	// Memory caps the group's memory, page cache and tmpfs pages included,
	// in bytes (v2 memory.max, with memory.swap.max 0; v1
	// memory.limit_in_bytes and memory.memsw.limit_in_bytes). At the cap the
	// kernel reclaims, then the OOM killer kills a process of the group.
	Memory int64
	// AccountDevices are block devices ("major:minor") whose I/O a v1 blkio
	// group counts. Recent kernels count a v1 group's I/O
	// (blkio.throttle.io_service_bytes, io_serviced) only on devices where
	// it has a throttle rule, so SetLimits gives the group a rule no
	// workload reaches (write_bps_device at 2^62 bytes a second).
	AccountDevices []string
}

// unreachableBps is the v1 throttle rule that only turns on accounting.
const unreachableBps = "4611686018427387904" // 2^62 bytes a second

// LimitControllers are the controllers SetLimits uses. A group in the cpu
// controller sets no limit: it makes the group one entity for the
// scheduler, weighted like a single process of its parent, so a thousand
// busy processes of one group take no more CPU from the rest of the host
// than one would.
var LimitControllers = []string{"pids", "memory", "cpu"}

// SetLimits creates group (and missing parents) and applies l to it, in
// what this hierarchy controls: on v2 both limits, after enabling the pids
// and memory controllers in the cgroup.subtree_control of Dir and of every
// group between Dir and group; on v1 the limit of Controller ("pids" or
// "memory"; other controllers set nothing).
func (h Hierarchy) SetLimits(group string, l Limits) error {
	if err := h.Create(group); err != nil {
		return err
	}
	dir := h.Path(group)
	var errs []error
	// v > 0 is a limit, 0 none ("max"; -1 for v1 memory files), -2 a
	// literal 0.
	set := func(file string, v int64, optional bool) {
		value := "max"
		switch {
		case v > 0:
			value = strconv.FormatInt(v, 10)
		case v == -2:
			value = "0"
		case h.Version == V1 && file != "pids.max":
			value = "-1"
		}
		err := h.writeFile(filepath.Join(dir, file), value)
		if optional && errors.Is(err, fs.ErrNotExist) {
			return // e.g. no swap accounting
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	switch {
	case h.Version == V2:
		avail := h.v2Controllers()
		if err := h.enableControllers(group, avail); err != nil {
			return err
		}
		if contains(avail, "pids") {
			set("pids.max", l.Pids, false)
		}
		if contains(avail, "memory") {
			set("memory.max", l.Memory, false)
			if l.Memory > 0 {
				set("memory.swap.max", -2, true)
			}
		}
	case h.Controller == "pids":
		set("pids.max", l.Pids, false)
	case h.Controller == "blkio":
		for _, dev := range l.AccountDevices {
			errs = append(errs, h.writeFile(filepath.Join(dir, "blkio.throttle.write_bps_device"), dev+" "+unreachableBps))
		}
	case h.Controller == "memory":
		// memsw (memory+swap) must stay >= memory: lower memory first when
		// setting, raise memsw first when lifting.
		if l.Memory > 0 {
			set("memory.limit_in_bytes", l.Memory, false)
			set("memory.memsw.limit_in_bytes", l.Memory, true)
		} else {
			set("memory.memsw.limit_in_bytes", 0, true)
			set("memory.limit_in_bytes", 0, false)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("set limits of %s group %s: %w", h.Version, dir, err)
	}
	return nil
}

// enableControllers writes "+pids +memory" to the cgroup.subtree_control of
// Dir and of each group above group, top down, when not enabled yet. (v2
// forbids processes in a group that delegates controllers, except in the
// root: Dir must hold no processes unless it is the root.)
func (h Hierarchy) enableControllers(group string, avail []string) error {
	if len(avail) == 0 {
		return nil
	}
	dirs := []string{h.Dir}
	parts := strings.Split(filepath.Clean(group), "/")
	for i := 1; i < len(parts); i++ {
		dirs = append(dirs, h.Path(filepath.Join(parts[:i]...)))
	}
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.subtree_control"))
		if err != nil {
			return fmt.Errorf("enable cgroup v2 controllers in %s: %w", d, err)
		}
		have := strings.Fields(string(b))
		var add []string
		for _, c := range avail {
			if !contains(have, c) {
				add = append(add, "+"+c)
			}
		}
		if len(add) == 0 {
			continue
		}
		err = h.writeFile(filepath.Join(d, "cgroup.subtree_control"), strings.Join(add, " "))
		if err != nil && contains(add, "+cpu") {
			// Best effort for cpu, which cannot be enabled, e.g., while
			// realtime processes run outside the root group on kernels with
			// realtime group scheduling: retry without it.
			add = slices.DeleteFunc(add, func(c string) bool { return c == "+cpu" })
			err = nil
			if len(add) > 0 {
				err = h.writeFile(filepath.Join(d, "cgroup.subtree_control"), strings.Join(add, " "))
			}
		}
		if err != nil {
			return fmt.Errorf("enable cgroup v2 controllers %v in %s (the group must have no processes of its "+
				"own and its parent must enable them; see cgroup.controllers there): %w", add, d, err)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// v2Controllers returns the LimitControllers and AccountingControllers
// available in Dir (listed in its cgroup.controllers; on a hybrid host they
// are bound to v1 instead).
func (h Hierarchy) v2Controllers() []string {
	b, _ := os.ReadFile(filepath.Join(h.Dir, "cgroup.controllers"))
	have := strings.Fields(string(b))
	var out []string
	for _, c := range append(slices.Clone(LimitControllers), "io") {
		if contains(have, c) {
			out = append(out, c)
		}
	}
	return out
}

// AccountingControllers are the v1 controllers whose hierarchies a group
// joins only to be measured: blkio counts its disk I/O (io.stat where the
// cgroup v2 io controller is available instead).
var AccountingControllers = []string{"blkio"}

// GroupHierarchies returns the hierarchies in which an instance has a
// group: h, the one its processes are killed through, first, then those of
// LimitHierarchies(h) other than h.
func GroupHierarchies(h Hierarchy) ([]Hierarchy, error) {
	lh, err := LimitHierarchies(h)
	if err != nil {
		return nil, err
	}
	out := []Hierarchy{h}
	for _, l := range lh {
		if l.Dir != h.Dir {
			out = append(out, l)
		}
	}
	return out, nil
}

// LimitHierarchies returns the hierarchies that enforce Limits next to h:
// on v2, h itself for the controllers it has, and the v1 hierarchies of
// the others (a hybrid host); on v1 the mounted pids and memory
// hierarchies (as Hierarchy values whose Controller is "pids" or
// "memory"), which can be h. It adds those that only account: the v1
// blkio hierarchy where v2 has no io controller, and on a v1 host a
// mounted cgroup2 hierarchy (/sys/fs/cgroup/unified on hybrid hosts),
// whose cpu.stat counts CPU time without any controller, so a group's
// processes are measured from their start.
func LimitHierarchies(h Hierarchy) ([]Hierarchy, error) {
	ms, err := mountinfo.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("list cgroup hierarchies: %w", err)
	}
	return limitHierarchies(h, ms), nil
}

func limitHierarchies(h Hierarchy, ms []mountinfo.Mount) []Hierarchy {
	var out []Hierarchy
	var have []string
	if h.Version == V2 {
		out = append(out, h)
		have = h.v2Controllers()
	}
	for _, c := range LimitControllers {
		if contains(have, c) {
			continue
		}
		for _, m := range cgroupMounts(ms) {
			if m.FSType == "cgroup" && m.HasSuperOption(c) {
				out = append(out, Hierarchy{Dir: m.MountPoint, Version: V1, Controller: c})
				break
			}
		}
	}
	for _, c := range AccountingControllers {
		if contains(have, "io") {
			break
		}
		for _, m := range cgroupMounts(ms) {
			if m.FSType == "cgroup" && m.HasSuperOption(c) {
				out = append(out, Hierarchy{Dir: m.MountPoint, Version: V1, Controller: c})
				break
			}
		}
	}
	if h.Version == V1 {
		for _, m := range cgroupMounts(ms) {
			if m.FSType == "cgroup2" {
				out = append(out, Hierarchy{Dir: m.MountPoint, Version: V2})
				break
			}
		}
	}
	return out
}

// BlockDevices answers the block devices ("major:minor") of the file
// systems holding paths, for Limits.AccountDevices: each once, and only
// real block devices (a tmpfs or overlay has none); paths that cannot be
// read are skipped.
func BlockDevices(paths ...string) []string {
	var out []string
	for _, p := range paths {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			continue
		}
		dev := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
		if slices.Contains(out, dev) || !exists(filepath.Join("/sys/dev/block", dev)) {
			continue
		}
		out = append(out, dev)
	}
	return out
}
