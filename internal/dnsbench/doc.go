// Command dnsbench is the harness of scripts/bench-dns.sh: it builds a VNET
// namespace with package vnet (the name must start with "vmss"), serves the
// internal DNS of package dns at 168.63.129.16:53 in it with N records
// (web000000, web000001, ... at 10.0.0.4 onwards), writes the same names as
// a hosts file (for dnsmasq) and as a dnsperf query file, prints "ready",
// and on SIGINT or SIGTERM stops the server and deletes the namespace.
//
//	dnsbench -netns vmssbench-dns-1 -records 100 -hosts /tmp/h -queries /tmp/q
package main
