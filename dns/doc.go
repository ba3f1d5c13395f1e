// Package dns is the internal DNS of a virtual network, as Azure provides
// at 168.63.129.16: each instance's computer name resolves to its private
// address, both as the short name (web000002) and with the VNET's suffix
// (web000002.<suffix>, suffix shaped like
// xxxxxxxx.bx.internal.cloudapp.net), and private addresses resolve back
// (PTR) to that full name. Names are case-insensitive.
//
// Answers:
//
//   - A for a known name: its address; AAAA or other types: no data
//     (NOERROR, SOA in authority).
//   - Unknown names in the zone (short or with the suffix) and unknown
//     addresses in the VNET's address space: NXDOMAIN with the SOA.
//   - Everything else: REFUSED. The server is authoritative only and has
//     no upstream (the emulator's host has no internet); REFUSED tells a
//     stub resolver at once that this server will not answer, where
//     SERVFAIL would invite retries.
//
// Records change while serving: SetRecords replaces them all atomically,
// Add and Remove change some; each change builds a new snapshot and swaps
// it in, so queries never wait for a lock.
//
// Serving: UDP is answered by one read loop per socket (ListenAndServe
// opens an SO_REUSEPORT socket per CPU), reading and writing in batches
// (recvmmsg, sendmmsg), with no goroutine per query. Each loop keeps the
// packed replies of the current snapshot keyed by the request's bytes
// after its ID, so a repeated question is answered by a copy with the ID
// patched; a new snapshot empties the cache. Replies are byte for byte
// those of the full path (miekg/dns's server with ServeDNS). TCP is
// served by miekg/dns.
//
// Typical usage, one Server per VNET:
//
//	srv, err := dns.New(dns.Config{Suffix: dns.SuffixFor(vnetID),
//		Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}})
//	err = srv.SetRecords([]dns.Record{{Name: "web000002", IP: ip}})
//	go srv.ListenAndServe(ctx, nsnet.Path(vnetNetns), "") // 168.63.129.16:53, UDP and TCP
//
// or, with sockets the caller made, srv.Serve(ctx, packetConn, listener).
//
// Non-goals: recursion or forwarding, zones other than the VNET's own,
// DNSSEC, zone transfers, IPv6 records, and writing the instances'
// resolv.conf (the instance package points it at 168.63.129.16 with the
// suffix as search domain).
package dns
