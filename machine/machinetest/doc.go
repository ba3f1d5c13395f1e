// Package machinetest has fakes of what the machine's rooms need of the
// kernel, so their logic is tested without root: Network (the VNETs, for
// package machine/dataplane) routes VNET addresses to loopback sockets, and
// Instances (for machine/workload and machine/sshservice) runs instance
// commands as ordinary processes under a temporary directory and listens and
// dials on loopback.
package machinetest
