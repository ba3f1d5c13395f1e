// Package machine is the machine side of the emulator: it implements the
// reconciler's Kernel with the packages that touch the system. A VNET is a
// namespace with bridges (package vnet) and an internal DNS server (package
// dns); an instance is a set of namespaces with a cgroup (package instance),
// a NIC on its subnet's bridge, an SSH server listening inside it (package
// sshd) and the workload its extensions start; the data plane is a table of
// inbound NAT forwards (package nat) and one engine per load balancer
// (package lb), with backend connections dialled inside the VNETs (package
// nsnet).
//
// Per-instance records (build, restart and model generations; extension
// results) live in StateDir/host/<netns>.json so a restarted daemon knows what
// it already did; everything in the kernel carries the configured prefix.
package machine
