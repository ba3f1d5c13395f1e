package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vmss-emulator/vmss/api"
	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/client"
	"github.com/vmss-emulator/vmss/dataview"
	"github.com/vmss-emulator/vmss/deploy"
	"github.com/vmss-emulator/vmss/machine"
	"github.com/vmss-emulator/vmss/model"
	"github.com/vmss-emulator/vmss/monitor"
	"github.com/vmss-emulator/vmss/proxy"
	"github.com/vmss-emulator/vmss/reconcile"
)

// Options configure a daemon. Zero values take the defaults given.
type Options struct {
	Socket     string // default /run/vmss/vmss.sock
	StateDir   string // default /var/lib/vmss
	RuntimeDir string // default /run/vmss
	Prefix     string // kernel object prefix, default "vmss-"
	// PublicIPRange holds the host addresses given to public IPs; default 127.77.0.0/16.
	PublicIPRange netip.Prefix
	Subscription  string
	Location      string
	LiftLimits    bool
	// MetricsAddr serves Prometheus metrics; it must be a loopback address.
	// Default 127.0.0.1:9100; "off" disables metrics.
	MetricsAddr string
	// ProbeIntervalScale multiplies probe intervals, of load balancers and of
	// the Application Health extension (tests use e.g. 0.02).
	ProbeIntervalScale float64
	// TimeScale multiplies every autoscale duration (time grain, time window,
	// cooldown, evaluation interval) and the metric sampling interval; zero
	// means 1. Metrics keep wall-clock timestamps.
	TimeScale float64
	// DrainPeriod is the default drain period of backend pools; default 5s.
	DrainPeriod time.Duration
	// JumpboxPorts are tried, in order, when port 22 of a VM's public IP is
	// taken on the host; default 2222, 22222.
	JumpboxPorts []uint16
	Parallel     int
	Resync       time.Duration
	// WorkloadGrace: see machine.Config.
	WorkloadGrace time.Duration
	// HealthInterval: see machine.Config.
	HealthInterval time.Duration
	Logger         *slog.Logger
}

func (o *Options) defaults() {
	if o.Socket == "" {
		o.Socket = client.DefaultSocket
	}
	if o.StateDir == "" {
		o.StateDir = "/var/lib/vmss"
	}
	if o.RuntimeDir == "" {
		o.RuntimeDir = "/run/vmss"
	}
	if o.Prefix == "" {
		o.Prefix = "vmss-"
	}
	if !o.PublicIPRange.IsValid() {
		o.PublicIPRange = netip.MustParsePrefix("127.77.0.0/16")
	}
	if o.MetricsAddr == "" {
		o.MetricsAddr = "127.0.0.1:9100"
	}
	if o.DrainPeriod == 0 {
		o.DrainPeriod = 5 * time.Second
	}
	if len(o.JumpboxPorts) == 0 {
		o.JumpboxPorts = []uint16{2222, 22222}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Daemon is a running emulator.
type Daemon struct {
	Options    Options
	Store      *model.Store
	Machine    *machine.Machine
	Reconciler *reconcile.Reconciler
	API        *api.Server
	Metrics    *prometheus.Registry

	deployer *deploy.Engine
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	errc     chan error
}

// Start opens the state, adopts what exists in the kernel and serves the API.
func Start(ctx context.Context, o Options) (*Daemon, error) {
	o.defaults()
	if os.Geteuid() != 0 {
		return nil, errors.New("vmss needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN): run it with sudo")
	}
	if !o.PublicIPRange.Addr().Is4() {
		return nil, fmt.Errorf("--public-ip-range %s: give an IPv4 prefix such as 127.77.0.0/16", o.PublicIPRange)
	}
	if lim, err := proxy.RaiseFileLimit(1 << 20); err != nil {
		o.Logger.Warn("could not raise the open-file limit; thousands of connections may fail", "limit", lim, "err", err)
	}
	cfg := model.DefaultConfig()
	cfg.Prefix = o.Prefix
	cfg.PublicIPRange = o.PublicIPRange
	cfg.LiftLimits = o.LiftLimits
	if o.Subscription != "" {
		cfg.Subscription = o.Subscription
	}
	if o.Location != "" {
		cfg.Location = o.Location
	}
	store, err := model.Open(o.StateDir, cfg)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h, err := machine.New(machine.Config{
		Prefix: o.Prefix, RuntimeDir: o.RuntimeDir, StateDir: o.StateDir, Registerer: reg,
		WorkloadGrace: o.WorkloadGrace, HealthInterval: o.HealthInterval, HealthIntervalScale: o.ProbeIntervalScale, Logger: o.Logger,
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	if _, err := h.Manager().List(ctx); err != nil {
		h.Close()
		store.Close()
		return nil, fmt.Errorf("cannot use the configured directories: %w", err)
	}
	rec := reconcile.New(store, h, reconcile.Options{
		Parallel: o.Parallel, Resync: o.Resync, Logger: o.Logger,
		Plan: reconcile.PlanOptions{ProbeIntervalScale: o.ProbeIntervalScale, DefaultDrain: o.DrainPeriod, JumpboxFallbackPorts: o.JumpboxPorts},
	})
	mon := monitor.New(monitor.Options{Store: store, TimeScale: o.TimeScale, Logger: o.Logger, Registerer: reg,
		Sampler: &monitor.KernelSampler{Prefix: o.Prefix, Processes: h.Manager().Processes, Logger: o.Logger}})
	srv := &api.Server{Store: store, Runtime: runtime{rec, h}, Monitor: monitorAPI{mon}, Logger: o.Logger}
	eng, err := newDeployer(store, srv, o.Logger)
	if err != nil {
		h.Close()
		store.Close()
		return nil, err
	}
	srv.Deployer = eng
	ln, err := api.ListenUnix(o.Socket)
	if err != nil {
		h.Close()
		store.Close()
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d := &Daemon{Options: o, Store: store, Machine: h, Reconciler: rec, API: srv, Metrics: reg, deployer: eng, cancel: cancel, errc: make(chan error, 2)}
	d.wg.Add(2)
	go func() { defer d.wg.Done(); rec.Run(rctx) }()
	go func() {
		defer d.wg.Done()
		if err := srv.Serve(rctx, ln); err != nil {
			d.errc <- fmt.Errorf("API server: %w", err)
		}
	}()
	d.wg.Add(1)
	go func() { defer d.wg.Done(); mon.Run(rctx) }() // metrics and autoscale
	if err := d.serveMetrics(rctx); err != nil {
		o.Logger.Warn("metrics are off", "err", err)
	}
	o.Logger.Info("vmss daemon serving", "socket", o.Socket, "state", o.StateDir, "prefix", o.Prefix, "public-ip-range", o.PublicIPRange)
	return d, nil
}

func (d *Daemon) serveMetrics(ctx context.Context) error {
	addr := d.Options.MetricsAddr
	if addr == "off" {
		return nil
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		host, port, serr := net.SplitHostPort(addr)
		if serr != nil || host != "localhost" {
			return fmt.Errorf("--metrics-addr %q: give a loopback address:port such as 127.0.0.1:9100", addr)
		}
		ap, err = netip.ParseAddrPort("127.0.0.1:" + port)
		if err != nil {
			return fmt.Errorf("--metrics-addr %q: %w", addr, err)
		}
	}
	if !ap.Addr().IsLoopback() {
		return fmt.Errorf("--metrics-addr %s is not a loopback address; metrics are served on loopback only", addr)
	}
	ln, err := net.Listen("tcp", ap.String())
	if err != nil {
		return fmt.Errorf("listen on %s for metrics (use --metrics-addr to pick another port, or off): %w", ap, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.Metrics, promhttp.HandlerOpts{}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	d.wg.Add(2)
	go func() { defer d.wg.Done(); _ = hs.Serve(ln) }()
	go func() {
		defer d.wg.Done()
		<-ctx.Done()
		_ = hs.Close()
	}()
	return nil
}

// Err reports a server that stopped on its own.
func (d *Daemon) Err() <-chan error { return d.errc }

// Stop stops serving. Instances, VNETs and the state stay: the next Start
// adopts them.
func (d *Daemon) Stop() error {
	derr := d.deployer.Close() // deployments in flight are recorded as interrupted
	d.cancel()
	d.wg.Wait()
	err := d.Machine.Close()
	_ = os.Remove(d.Options.Socket)
	return errors.Join(derr, err, d.Store.Close())
}

// Teardown deletes every resource group in the state, waits until the
// reconciler has removed their instances and VNETs, and stops. What is left in
// the kernel with the prefix is then removed by Cleanup.
func (d *Daemon) Teardown(ctx context.Context) error {
	err := d.Store.Update(func(st *model.State) error {
		for _, g := range st.ResourceGroups {
			if _, e := st.DeleteGroup(g.Name); e != nil {
				return e
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var left int
		d.Store.View(func(st *model.State) { left = len(st.ResourceGroups) + len(st.ScaleSets) + len(st.VMs) + len(st.VNets) })
		if left == 0 {
			vn, _ := d.Machine.VNets(ctx)
			inst, _ := d.Machine.Manager().List(ctx)
			if len(vn) == 0 && len(inst) == 0 {
				break
			}
		}
		d.Reconciler.Trigger()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	stopErr := d.Stop()
	cerr := Cleanup(context.WithoutCancel(ctx), CleanupOptions{Prefix: d.Options.Prefix, RuntimeDir: d.Options.RuntimeDir, StateDir: d.Options.StateDir})
	return errors.Join(stopErr, cerr)
}

// runtime is the API's view of the running emulator: the reconciler's status,
// with the machine's data-plane and workload details.
type runtime struct {
	rec *reconcile.Reconciler
	m   *machine.Machine
}

func (r runtime) Pending(key string) (bool, error) { return r.rec.Pending(key) }

func (r runtime) Applied() int64 { return r.rec.Applied() }

func (r runtime) LoadBalancerHealth(key string) *dataview.LoadBalancer {
	return r.m.DataPlane().LoadBalancer(key)
}

func (r runtime) RunCommand(ctx context.Context, netns, script string) (string, string, int, error) {
	return r.m.Workloads().RunCommand(ctx, netns, script)
}

func (r runtime) Instance(netns string) api.InstanceStatus {
	rs := r.rec.Instance(netns)
	st := api.InstanceStatus{ProvisioningState: rs.ProvisioningState, PowerState: rs.PowerState,
		Health: rs.Health, Error: rs.Error, Extensions: rs.Extensions}
	plane := r.m.DataPlane()
	if ep := plane.Endpoint(netns); ep != "" {
		st.Statuses = append(st.Statuses, statusOf("SSHEndpoint/"+ep, "SSH answers on "+ep))
	} else if err := plane.EndpointError(netns); err != nil {
		st.Statuses = append(st.Statuses, arm.InstanceViewStatus{Code: "SSHEndpoint/none", Level: "Error",
			DisplayStatus: "SSH is not reachable on the public IP", Message: err.Error()})
	}
	st.Statuses = append(st.Statuses, api.ProbeStatuses(plane.Probes(netns))...)
	if h := r.m.Workloads().Health(netns); h != "" {
		st.Health = h // live: the reconciler's copy is as old as its last pass
	}
	return st
}

var _ api.Runtime = runtime{}

// CleanupOptions say what Cleanup removes.
type CleanupOptions struct {
	Prefix, RuntimeDir, StateDir string
	// KeepState keeps the desired state file (the next daemon rebuilds from it).
	KeepState bool
	Logger    *slog.Logger
}

// Cleanup removes everything with the prefix from the kernel and the runtime
// directory, without a daemon and without the state: instances (processes,
// cgroups, namespaces), VNET namespaces, and (unless KeepState) the state
// directory. It is idempotent.
func Cleanup(ctx context.Context, o CleanupOptions) error {
	if o.Prefix == "" {
		o.Prefix = "vmss-"
	}
	if o.RuntimeDir == "" {
		o.RuntimeDir = "/run/vmss"
	}
	if o.StateDir == "" {
		o.StateDir = "/var/lib/vmss"
	}
	h, err := machine.New(machine.Config{Prefix: o.Prefix, RuntimeDir: o.RuntimeDir, StateDir: o.StateDir, Logger: o.Logger})
	if err != nil {
		return err
	}
	defer h.Close()
	var errs []error
	errs = append(errs, h.Manager().Cleanup(ctx))
	vnets, err := h.VNets(ctx)
	errs = append(errs, err)
	for _, n := range vnets {
		errs = append(errs, h.DeleteVNet(ctx, n))
	}
	for _, d := range []string{"host"} {
		errs = append(errs, os.RemoveAll(filepath.Join(o.StateDir, d)))
	}
	if !o.KeepState {
		for _, f := range []string{model.StateFile, "lock"} {
			if err := os.Remove(filepath.Join(o.StateDir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		_ = os.Remove(o.StateDir) // only when empty
	}
	return errors.Join(errs...)
}

var _ = strings.ToLower
