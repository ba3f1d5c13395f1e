// Package sshservice serves SSH on port 22 inside every started instance
// (package sshd): with the instance's own host keys (generated at creation;
// RSA keys in the background, postponed while instances are being created),
// its admin user and keys, sessions run inside the instance as the admin,
// and direct-tcpip channels (ssh -L, ssh -J) dialled from inside the
// instance with the instance's own resolver (its /etc/hosts, then the VNET's
// DNS server with the VNET's suffix as search domain). During the handshake
// the server acknowledges at once (TCP_QUICKACK), so OpenSSH's client does
// not stall on delayed ACKs.
//
// The service reaches instances through the Instances interface (spec,
// listening and dialling inside one, commands); the instance manager
// implements it, and machinetest.Instances is a fake on loopback, so the
// service is tested without root.
package sshservice
