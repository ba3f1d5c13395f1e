package cgroup

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/vmss-emulator/vmss/internal/mountinfo"
)

// Version is the cgroup filesystem version of a hierarchy.
type Version int

// The two cgroup filesystem versions.
const (
	V1 Version = 1
	V2 Version = 2
)

func (v Version) String() string {
	switch v {
	case V1:
		return "cgroup v1"
	case V2:
		return "cgroup v2"
	}
	return fmt.Sprintf("cgroup version %d", int(v))
}

// v1 controllers that can stop a group from forking while it is killed, in
// order of preference.
var killControllers = []string{"freezer", "pids"}

// Detect picks the hierarchy of the running host from /proc/self/mountinfo;
// see the package documentation for the order of preference.
func Detect() (Hierarchy, error) {
	ms, err := mountinfo.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return Hierarchy{}, fmt.Errorf("detect cgroups: %w", err)
	}
	return detect(ms)
}

// At returns the hierarchy for dir, a directory inside a mounted cgroup
// filesystem (a mount point such as /sys/fs/cgroup/unified, or a delegated
// subtree below one). Groups are created under dir.
func At(dir string) (Hierarchy, error) {
	ms, err := mountinfo.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return Hierarchy{}, fmt.Errorf("cgroup hierarchy at %s: %w", dir, err)
	}
	return at(dir, ms)
}

// All returns every mounted hierarchy this package could use (all cgroup2
// mounts and the v1 freezer, pids, memory, cpu and blkio hierarchies), e.g. to
// find leftovers.
func All() ([]Hierarchy, error) {
	ms, err := mountinfo.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("list cgroup hierarchies: %w", err)
	}
	return all(ms), nil
}

// cgroupMounts returns the cgroup mounts, the last mount wins when several
// are stacked on the same mount point.
func cgroupMounts(ms []mountinfo.Mount) []mountinfo.Mount {
	idx := map[string]int{}
	var out []mountinfo.Mount
	for _, m := range ms {
		if m.FSType != "cgroup" && m.FSType != "cgroup2" {
			if i, ok := idx[m.MountPoint]; ok { // something else covers it now
				out[i] = mountinfo.Mount{}
			}
			continue
		}
		if i, ok := idx[m.MountPoint]; ok {
			out[i] = m
			continue
		}
		idx[m.MountPoint] = len(out)
		out = append(out, m)
	}
	res := out[:0]
	for _, m := range out {
		if m.FSType != "" {
			res = append(res, m)
		}
	}
	return res
}

func fromMount(m mountinfo.Mount, dir string) Hierarchy {
	if m.FSType == "cgroup2" {
		return Hierarchy{Dir: dir, Version: V2}
	}
	h := Hierarchy{Dir: dir, Version: V1}
	for _, c := range killControllers {
		if m.HasSuperOption(c) {
			h.Controller = c
			break
		}
	}
	return h
}

func detect(ms []mountinfo.Mount) (Hierarchy, error) {
	cms := cgroupMounts(ms)
	for _, m := range cms {
		if m.MountPoint == "/sys/fs/cgroup" && m.FSType == "cgroup2" {
			return fromMount(m, m.MountPoint), nil
		}
	}
	for _, c := range killControllers {
		for _, m := range cms {
			if m.FSType == "cgroup" && m.HasSuperOption(c) {
				return fromMount(m, m.MountPoint), nil
			}
		}
	}
	for _, m := range cms {
		if m.FSType == "cgroup2" {
			return fromMount(m, m.MountPoint), nil
		}
	}
	return Hierarchy{}, errors.New("no usable cgroup hierarchy: mount cgroup2 on /sys/fs/cgroup " +
		"(or a v1 freezer or pids hierarchy), e.g. `mount -t cgroup2 none /sys/fs/cgroup`")
}

func at(dir string, ms []mountinfo.Mount) (Hierarchy, error) {
	dir = filepath.Clean(dir)
	var best mountinfo.Mount
	for _, m := range cgroupMounts(ms) {
		if within(dir, m.MountPoint) && len(m.MountPoint) > len(best.MountPoint) {
			best = m
		}
	}
	if best.FSType == "" {
		return Hierarchy{}, fmt.Errorf("%s is not inside a mounted cgroup filesystem "+
			"(see /proc/self/mountinfo); use a directory under /sys/fs/cgroup", dir)
	}
	return fromMount(best, dir), nil
}

func all(ms []mountinfo.Mount) []Hierarchy {
	var out []Hierarchy
	for _, m := range cgroupMounts(ms) {
		h := fromMount(m, m.MountPoint)
		for _, c := range append([]string{"memory", "cpu"}, AccountingControllers...) {
			if h.Version == V1 && h.Controller == "" && m.HasSuperOption(c) {
				h.Controller = c // holds groups for the limits or accounting
			}
		}
		if h.Version == V2 || h.Controller != "" {
			out = append(out, h)
		}
	}
	return out
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	return path == dir || dir == "/" || strings.HasPrefix(path, dir+"/")
}
