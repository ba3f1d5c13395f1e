// Package cgroup tracks and kills groups of processes with Linux control
// groups, on both cgroup v2 (the unified hierarchy) and cgroup v1.
//
// The package uses cgroups to know which processes belong together, to kill
// all of them reliably, and to cap their processes and memory (SetLimits,
// on v2 or in the v1 pids and memory hierarchies, see LimitHierarchies).
// The hierarchy is detected at runtime:
//
//   - cgroup v2 mounted at /sys/fs/cgroup: processes are killed with
//     cgroup.kill (Linux 5.14+), which also catches processes forked during
//     the kill; on older kernels the group is frozen with cgroup.freeze,
//     every member is sent SIGKILL, and the group is thawed.
//   - cgroup v1: the freezer hierarchy is preferred (freeze, SIGKILL every
//     member, thaw, so a fork bomb cannot outrun the kill); without it the
//     pids hierarchy is used with pids.max set to 0 during the kill so no new
//     process can be forked.
//   - hybrid hosts (v1 controllers plus cgroup2 at /sys/fs/cgroup/unified):
//     v1 freezer or pids first, the unified hierarchy otherwise.
//
// Typical usage:
//
//	h, err := cgroup.Detect()
//	err = h.Create("vmss/vmss-web-0")
//	// start a process that writes its own pid to h.ProcsFile("vmss/vmss-web-0")
//	pids, err := h.Procs("vmss/vmss-web-0")
//	err = h.Remove(ctx, "vmss/vmss-web-0") // kill everything, then rmdir
//
// Non-goals: CPU and I/O limits, systemd integration
// (delegation through D-Bus), cgroup namespaces.
package cgroup
