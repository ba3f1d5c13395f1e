// Command kernelfloor measures what the kernel alone charges for the objects
// an instance is made of, as their number grows, with nothing of the
// emulator in the way: a network namespace pinned by a bind mount, a sysfs
// mounted from inside it, a veth pair whose outer end joins a bridge of a
// hub namespace, and a cgroup in each hierarchy the daemon puts an
// instance's group in. For each count N it makes N of them one at a time,
// then removes them, and prints the CPU time (user + system, of this process)
// per 100 and the mean wall time of each step.
//
// scripts/bench-scale.sh runs it after the daemon's rounds, with the same
// counts, so the daemon's CPU per 100 instances can be set against the
// kernel's floor: where the floor grows with N, so must the daemon.
//
//	sudo go run ./scripts/kernelfloor -n 100,1000,4096
//
// Everything it makes carries a prefix: the hub's links are vmsskf…, inside
// a namespace of its own; pins and sysfs mounts live on a tmpfs of its own at
// /run/<prefix>-<pid>, cgroups under <hierarchy>/<prefix> (-prefix, default
// vmsskf). All of it is removed at the end, also after an error
// or Ctrl-C.
package main
