package dataplane

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmss-emulator/vmss/lb"
	"github.com/vmss-emulator/vmss/nat"
	"github.com/vmss-emulator/vmss/nsg"
	"github.com/vmss-emulator/vmss/reconcile"
)

// Config configures a Plane.
type Config struct {
	// Network reaches the VNETs (required).
	Network Network
	// Registerer receives load-balancer metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// Filters loads network security groups into instances; nil runs nft.
	Filters nsg.Runner
	Logger  *slog.Logger
}

// Plane applies the reconciler's data-plane Plan: DNS records of every
// VNET, inbound NAT forwards, one engine per load balancer and the network
// security groups of every instance. Each has its own lock.
type Plane struct {
	net  Network
	log  *slog.Logger
	base context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	zones     zones
	forwards  forwards
	balancers balancers
	filters   filters
}

// New returns a Plane. Close stops everything it serves.
func New(cfg Config) *Plane {
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Plane{net: cfg.Network, log: lg, base: ctx, stop: cancel}
	p.zones = zones{servers: map[string]*zoneServer{}}
	p.forwards = forwards{
		table: &nat.Table{Logger: lg}, chosen: map[string]uint16{},
		endpoints: map[string]string{}, endpointErr: map[string]error{}, owner: map[string]string{},
	}
	p.balancers = balancers{reg: cfg.Registerer, engines: map[string]*lb.Engine{}}
	p.filters = newFilters(cfg.Filters)
	return p
}

// Apply configures DNS records, inbound NAT, load balancers and instances'
// network security groups. What cannot be applied is reported by resource
// key; the rest is applied.
func (p *Plane) Apply(ctx context.Context, plan *reconcile.Plan) map[string]error {
	errs := map[string]error{}
	p.applyDNS(plan.DNS)
	p.applyNAT(ctx, plan.NAT, errs)
	p.applyLBs(ctx, plan.LBs, errs)
	p.applyFilters(ctx, plan.Filters, errs)
	return errs
}

// Close stops every engine, forward and DNS server; kernel objects stay.
func (p *Plane) Close() error {
	var errs []error
	errs = append(errs, p.balancers.closeAll()...)
	errs = append(errs, p.forwards.table.Close())
	for _, netns := range p.zones.closeAll() {
		p.net.Close(netns)
	}
	p.stop()
	p.wg.Wait()
	return errors.Join(errs...)
}
