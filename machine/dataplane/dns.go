package dataplane

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/vmss-emulator/vmss/dns"
	"github.com/vmss-emulator/vmss/reconcile"
)

// zones are the internal DNS servers, one per open VNET.
type zones struct {
	mu      sync.Mutex
	servers map[string]*zoneServer // VNET netns -> server; nil while the VNET is open without one
}

type zoneServer struct {
	srv    *dns.Server
	cancel context.CancelFunc
	done   chan struct{}
	fp     string
}

func (z *zoneServer) halt() {
	z.cancel()
	<-z.done
}

// OpenVNet makes a VNET reachable for the data plane and runs its DNS
// server for suffix and prefixes (restarted when they change).
func (p *Plane) OpenVNet(vnetNetns, suffix string, prefixes []netip.Prefix) error {
	fp := fmt.Sprint(suffix, prefixes)
	z := &p.zones
	z.mu.Lock()
	defer z.mu.Unlock()
	if err := p.net.Open(vnetNetns); err != nil {
		return err
	}
	if _, ok := z.servers[vnetNetns]; !ok {
		z.servers[vnetNetns] = nil
	}
	if d := z.servers[vnetNetns]; d != nil && d.fp == fp {
		return nil
	} else if d != nil {
		d.halt()
	}
	srv, err := dns.New(dns.Config{Suffix: suffix, Prefixes: prefixes})
	if err != nil {
		return fmt.Errorf("DNS server of %s: %w", vnetNetns, err)
	}
	dctx, cancel := context.WithCancel(p.base)
	d := &zoneServer{srv: srv, cancel: cancel, done: make(chan struct{}), fp: fp}
	z.servers[vnetNetns] = d
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(d.done)
		if err := p.net.ServeDNS(dctx, vnetNetns, srv); err != nil && dctx.Err() == nil {
			p.log.Error("DNS server stopped", "vnet", vnetNetns, "err", err)
		}
	}()
	return nil
}

// CloseVNet stops a VNET's DNS server and forgets the VNET.
func (p *Plane) CloseVNet(vnetNetns string) {
	z := &p.zones
	z.mu.Lock()
	d := z.servers[vnetNetns]
	delete(z.servers, vnetNetns)
	z.mu.Unlock()
	if d != nil {
		d.halt()
	}
	p.net.Close(vnetNetns)
}

// closeAll stops every DNS server (without waiting) and returns the VNETs
// that were open.
func (z *zones) closeAll() []string {
	z.mu.Lock()
	defer z.mu.Unlock()
	var open []string
	for netns, d := range z.servers {
		if d != nil {
			d.cancel()
		}
		open = append(open, netns)
	}
	return open
}

func (z *zones) server(vnetNetns string) *dns.Server {
	z.mu.Lock()
	defer z.mu.Unlock()
	if d := z.servers[vnetNetns]; d != nil {
		return d.srv
	}
	return nil
}

// applyDNS gives each VNET's DNS server its records; a VNET not open yet
// is skipped (the next plan reaches it).
func (p *Plane) applyDNS(zs []reconcile.DNSZone) {
	for _, zone := range zs {
		srv := p.zones.server(zone.VNetNetns)
		if srv == nil {
			continue
		}
		recs := make([]dns.Record, 0, len(zone.Records))
		for _, r := range zone.Records {
			recs = append(recs, dns.Record{Name: r.Name, IP: r.IP})
		}
		if err := srv.SetRecords(recs); err != nil {
			p.log.Error("DNS records", "vnet", zone.VNetNetns, "err", err)
		}
		pub := make([]dns.Record, 0, len(zone.Public))
		for _, r := range zone.Public {
			pub = append(pub, dns.Record{Name: r.Name, IP: r.IP})
		}
		if err := srv.SetPublicRecords(pub); err != nil {
			p.log.Error("public DNS records", "vnet", zone.VNetNetns, "err", err)
		}
	}
}
