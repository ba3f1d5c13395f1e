// Package machine is the machine side of the emulator: Machine implements
// the reconciler's Kernel with the packages that touch the system. It builds
// VNETs (package vnet: a namespace with a bridge per subnet) and instances
// (package instance: namespaces and a cgroup, plus a NIC on its subnet's
// bridge), keeps a record per instance, and hands everything that runs to
// three rooms, each with its own lock and its own narrow interface in front
// of the kernel:
//
//   - machine/dataplane applies the data-plane Plan: the internal DNS server
//     of every VNET (package dns), inbound NAT forwards (package nat) with
//     the jumpbox's fallback ports, and one engine per load balancer
//     (package lb), dialled and probed inside the VNETs through its Network
//     interface. It also answers the typed views of package dataview (load
//     balancer health, probe states) and VMs' SSH endpoints.
//   - machine/workload runs what makes an instance a workload: customData,
//     extensions (CustomScript), the Application Health extension's prober
//     and run-command, through its Instances interface.
//   - machine/sshservice serves SSH inside every started instance (package
//     sshd) with the instance's host keys and resolver.
//
// Package machinetest has fakes of those interfaces so the rooms are tested
// without root.
//
// Per-instance records (build, restart and model generations; extension
// results) live in StateDir/host/records/<shard>/<netns>.json so a restarted daemon
// knows what it already did; host keys and extension logs live beside them
// (StateDir/host/hostkeys, StateDir/host/logs). Everything in the kernel
// carries the configured prefix.
package machine
