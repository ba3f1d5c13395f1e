package daemon

import (
	"context"
	"errors"
	"fmt"
	"github.com/vmss-emulator/vmss/internal/defaults"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vmss-emulator/vmss/api"
	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/client"
	"github.com/vmss-emulator/vmss/dashboard"
	"github.com/vmss-emulator/vmss/dataview"
	"github.com/vmss-emulator/vmss/deploy"
	"github.com/vmss-emulator/vmss/gateway"
	"github.com/vmss-emulator/vmss/internal/lockfile"
	"github.com/vmss-emulator/vmss/machine"
	"github.com/vmss-emulator/vmss/model"
	"github.com/vmss-emulator/vmss/monitor"
	"github.com/vmss-emulator/vmss/proxy"
	"github.com/vmss-emulator/vmss/reconcile"
)

// TenantID is the tenant of the emulator's subscription and service principal.
const TenantID = "00000000-0000-0000-0000-000000000000"

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
	// HTTPSAddr serves the ARM API over HTTPS to az and the Azure SDKs (with
	// tokens from the emulator's authority); it must be a loopback address.
	// Default gateway.DefaultAddr; "off" disables it.
	HTTPSAddr string
	// PageSize is how many items one page of an API list holds (the rest
	// follows its nextLink). Zero: api.DefaultPageSize.
	PageSize int
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
	// StopTimeout bounds a graceful stop (and the teardown of vmss up) even
	// when a step keeps failing; default 30s.
	StopTimeout time.Duration
	// HealthInterval: see machine.Config.
	HealthInterval time.Duration
	// InstancePids, InstanceMemory, InstancesDisk: see machine.Config.
	InstancePids, InstanceMemory, InstancesDisk int64
	// DashboardReadOnly serves the dashboard without its actions.
	DashboardReadOnly bool
	Logger            *slog.Logger
}

func (o *Options) defaults() {
	if o.Socket == "" {
		o.Socket = client.DefaultSocket
	}
	if o.StateDir == "" {
		o.StateDir = defaults.StateDir
	}
	if o.RuntimeDir == "" {
		o.RuntimeDir = defaults.RuntimeDir
	}
	if o.Prefix == "" {
		o.Prefix = defaults.Prefix
	}
	if !o.PublicIPRange.IsValid() {
		o.PublicIPRange = netip.MustParsePrefix("127.77.0.0/16")
	}
	if o.HTTPSAddr == "" {
		o.HTTPSAddr = gateway.DefaultAddr
	}
	if o.MetricsAddr == "" {
		o.MetricsAddr = "127.0.0.1:9100"
	}
	if o.DrainPeriod == 0 {
		o.DrainPeriod = 5 * time.Second
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 30 * time.Second
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
	// Gateway is the HTTPS listener; nil when it is off.
	Gateway *gateway.Gateway
	Metrics *prometheus.Registry
	// Dashboard is the live dashboard on the metrics listener; nil when metrics are off.
	Dashboard *dashboard.Server

	metricsURL string

	deployer *deploy.Engine
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	errc     chan error
	// prefixLock keeps a second daemon away from the prefix's kernel objects.
	prefixLock *lockfile.Lock
	stopOnce   sync.Once
	stopErr    error
}

// PrefixLockDir holds one lock file per prefix in use, whatever the state
// and runtime directories: two daemons with the same prefix would delete
// each other's instances as orphans.
const PrefixLockDir = "/run/lock/vmss"

// PrefixLockPath is the lock file of a prefix.
func PrefixLockPath(prefix string) string {
	return filepath.Join(PrefixLockDir, "prefix-"+prefix+".lock")
}

// LockPrefix takes the prefix's lock, failing when another daemon (or a
// cleanup) holds it.
func LockPrefix(prefix string) (*lockfile.Lock, error) {
	l, err := lockfile.TryLock(PrefixLockPath(prefix))
	if errors.Is(err, lockfile.ErrHeld) {
		return nil, fmt.Errorf("prefix %q is in use by another vmss daemon (or a cleanup): stop it first, or use another --prefix: %w", prefix, err)
	}
	return l, err
}

// Start opens the state, adopts what exists in the kernel and serves the API.
func Start(ctx context.Context, o Options) (d *Daemon, err error) {
	o.defaults()
	if os.Geteuid() != 0 {
		return nil, errors.New("vmss needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN): run it with sudo")
	}
	if !o.PublicIPRange.Addr().Is4() {
		return nil, fmt.Errorf("--public-ip-range %s: give an IPv4 prefix such as 127.77.0.0/16", o.PublicIPRange)
	}
	if before, after := proxy.SetLoopProcs(); after != before {
		o.Logger.Debug("one more P than cores: the load balancer runs an event loop per core", "GOMAXPROCS", after)
	}
	if lim, err := proxy.RaiseFileLimit(1 << 20); err != nil {
		o.Logger.Warn("could not raise the open-file limit; thousands of connections may fail", "limit", lim, "err", err)
	}
	cfg := o.modelConfig()
	plock, err := LockPrefix(o.Prefix)
	if err != nil {
		return nil, err
	}
	store, err := model.Open(o.StateDir, cfg)
	if err != nil {
		plock.Close()
		return nil, err
	}
	defer func() {
		if d == nil {
			plock.Close()
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h, err := machine.New(machine.Config{
		Prefix: o.Prefix, RuntimeDir: o.RuntimeDir, StateDir: o.StateDir, Registerer: reg,
		WorkloadGrace: o.WorkloadGrace, HealthInterval: o.HealthInterval, HealthIntervalScale: o.ProbeIntervalScale, Logger: o.Logger,
		InstancePids: o.InstancePids, InstanceMemory: o.InstanceMemory, InstancesDisk: o.InstancesDisk,
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
	var dash *dashboard.Server // set below; the reconciler tells it when a pass ends
	rec := reconcile.New(store, h, reconcile.Options{
		Parallel: o.Parallel, Resync: o.Resync, Logger: o.Logger,
		OnPass: func() {
			if dash != nil {
				dash.Notify()
			}
		},
		Plan: reconcile.PlanOptions{ProbeIntervalScale: o.ProbeIntervalScale, DefaultDrain: o.DrainPeriod, JumpboxFallbackPorts: o.JumpboxPorts},
	})
	mon := monitor.New(monitor.Options{Store: store, TimeScale: o.TimeScale, Logger: o.Logger, Registerer: reg,
		StateFile: filepath.Join(o.StateDir, monitor.StateFile),
		Sampler:   &monitor.KernelSampler{Prefix: o.Prefix, Processes: h.Manager().Processes, Logger: o.Logger}})
	srv := &api.Server{Store: store, Runtime: runtime{rec, h}, Monitor: monitorAPI{mon}, Logger: o.Logger, PageSize: o.PageSize}
	eng, err := newDeployer(store, srv, o.Logger)
	if err != nil {
		h.Close()
		store.Close()
		return nil, err
	}
	srv.Deployer = eng
	if o.MetricsAddr != "off" {
		dash, err = dashboard.New(dashboard.Config{ARM: srv, Subscription: cfg.Subscription, ReadOnly: o.DashboardReadOnly, SampleInterval: mon.SampleInterval(), InstanceInterval: mon.InstanceInterval, Logger: o.Logger})
		if err != nil {
			h.Close()
			store.Close()
			return nil, err
		}
		store.OnChange(dash.Notify)
	}
	ln, err := api.ListenUnix(o.Socket)
	if err != nil {
		h.Close()
		store.Close()
		return nil, err
	}
	var gw *gateway.Gateway
	if o.HTTPSAddr != "off" {
		gw, err = gateway.Listen(gateway.Config{Addr: o.HTTPSAddr, StateDir: o.StateDir, PublicDir: gateway.PublicDir(o.RuntimeDir), TenantID: TenantID, API: srv, Logger: o.Logger})
		if err != nil {
			ln.Close()
			h.Close()
			store.Close()
			return nil, err
		}
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d = &Daemon{Options: o, Store: store, Machine: h, Reconciler: rec, API: srv, Gateway: gw, Metrics: reg, Dashboard: dash, deployer: eng, cancel: cancel, errc: make(chan error, 3), prefixLock: plock}
	d.run(rctx, ln, mon)
	o.Logger.Info("vmss daemon serving", "socket", o.Socket, "state", o.StateDir, "prefix", o.Prefix, "public-ip-range", o.PublicIPRange)
	return d, nil
}

// modelConfig is the model's configuration from the options.
func (o *Options) modelConfig() model.Config {
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
	return cfg
}

// run starts the daemon's goroutines until ctx ends: the HTTPS gateway
// (when on), the reconciler, the API on ln, the monitor (metrics and
// autoscale) and the metrics and dashboard listener. A server that stops on
// its own reports on Err.
func (d *Daemon) run(ctx context.Context, ln net.Listener, mon *monitor.Monitor) {
	o := d.Options
	if gw := d.Gateway; gw != nil {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := gw.Serve(ctx); err != nil {
				d.errc <- fmt.Errorf("HTTPS API server: %w", err)
			}
		}()
		o.Logger.Info("ARM over HTTPS", "url", gw.URL(), "ca", gw.Certs.CAPath())
	}
	d.wg.Add(3)
	go func() { defer d.wg.Done(); d.Reconciler.Run(ctx) }()
	go func() {
		defer d.wg.Done()
		if err := d.API.Serve(ctx, ln); err != nil {
			d.errc <- fmt.Errorf("API server: %w", err)
		}
	}()
	go func() { defer d.wg.Done(); mon.Run(ctx) }()
	if err := d.serveMetrics(ctx); err != nil {
		o.Logger.Warn("metrics are off", "err", err)
	}
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
	if d.Dashboard != nil {
		mux.Handle("/", d.Dashboard.Handler())
		d.wg.Add(1)
		go func() { defer d.wg.Done(); d.Dashboard.Run(ctx) }()
	}
	d.metricsURL = "http://" + ln.Addr().String() + "/"
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	d.wg.Add(2)
	go func() { defer d.wg.Done(); _ = hs.Serve(ln) }() // returns ErrServerClosed when Close below ends it
	go func() {
		defer d.wg.Done()
		<-ctx.Done()
		_ = hs.Close() // the daemon is stopping; metrics have no one left to report to
	}()
	return nil
}

// DashboardURL is the dashboard's address, "" when it is off.
func (d *Daemon) DashboardURL() string {
	if d.Dashboard == nil || d.metricsURL == "" {
		return ""
	}
	return d.metricsURL
}

// Err reports a server that stopped on its own.
func (d *Daemon) Err() <-chan error { return d.errc }

// Stop stops serving, within Options.StopTimeout. Instances, VNETs and the
// state stay: the next Start adopts them.
func (d *Daemon) Stop() error { return d.stopWithin(d.Options.StopTimeout) }

// stopWithin stops serving, giving up after timeout (a kernel step that
// hangs must not keep the daemon from exiting).
func (d *Daemon) stopWithin(timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- d.stop() }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("the daemon did not stop within %s (a step hangs); stopping anyway: what runs stays, the next 'vmss serve' adopts it and %s removes it", timeout, d.cleanupHint())
	}
}

func (d *Daemon) stop() error {
	d.stopOnce.Do(func() {
		derr := d.deployer.Close() // deployments in flight are recorded as interrupted
		d.cancel()
		d.wg.Wait()
		err := d.Machine.Close()
		_ = os.Remove(d.Options.Socket) // best effort: the next Start replaces a stale socket
		d.stopErr = errors.Join(derr, err, d.Store.Close(), d.prefixLock.Close())
	})
	return d.stopErr
}

// cleanupHint is the command that removes what this daemon made.
func (d *Daemon) cleanupHint() string {
	cmd := "'sudo vmss cleanup"
	if d.Options.Prefix != defaults.Prefix {
		cmd += " --prefix " + d.Options.Prefix
	}
	if d.Options.StateDir != defaults.StateDir {
		cmd += " --state-dir " + d.Options.StateDir
	}
	if d.Options.RuntimeDir != defaults.RuntimeDir {
		cmd += " --runtime-dir " + d.Options.RuntimeDir
	}
	return cmd + "'"
}

// Teardown deletes every resource group in the state, waits until the
// reconciler has removed their instances and VNETs, stops, and removes what
// is left in the kernel with the prefix (Cleanup). It ends within
// Options.StopTimeout (or ctx's deadline, when earlier) even if a step keeps
// failing; its error then names what is left and the command that removes it.
func (d *Daemon) Teardown(ctx context.Context) error {
	start := time.Now()
	total := d.Options.StopTimeout
	if dl, ok := ctx.Deadline(); ok {
		total = min(total, time.Until(dl))
	}
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
	// Most of the time goes to an orderly removal; Cleanup then forces what is left.
	wctx, cancel := context.WithTimeout(ctx, total*6/10)
	werr := d.Reconciler.WaitRemoved(wctx)
	cancel()
	if werr != nil {
		d.Options.Logger.Warn("teardown: the reconciler did not remove everything in time; forcing the rest", "err", werr)
	}
	stopErr := d.stopWithin(max(total*2/10, time.Second))
	cctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), start.Add(total).Add(time.Second))
	defer cancel()
	cerr := Cleanup(cctx, CleanupOptions{Prefix: d.Options.Prefix, RuntimeDir: d.Options.RuntimeDir, StateDir: d.Options.StateDir, Logger: d.Options.Logger})
	if cerr != nil {
		return fmt.Errorf("not everything was removed within %s: %w; run %s to remove the rest", total, errors.Join(werr, stopErr, cerr), d.cleanupHint())
	}
	return stopErr
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
	if h := r.m.Workloads().Health(netns); h != "" && !rs.HealthFromProbe {
		st.Health = h // live: the reconciler's copy is as old as its last pass
	}
	return st
}

func (r runtime) RollingUpgrade(key string, ss *model.ScaleSet) (api.RollingUpgradeStatus, bool) {
	ru, ok := r.rec.Rolling(key, ss)
	return api.RollingUpgradeStatus{Code: ru.Status, Start: ru.Start, End: ru.End, Error: ru.Error,
		Successful: ru.Successful, Failed: ru.Failed, InProgress: ru.InProgress, Pending: ru.Pending}, ok
}

var (
	_ api.Runtime         = runtime{}
	_ api.RollingUpgrades = runtime{}
)

// CleanupOptions say what Cleanup removes.
type CleanupOptions struct {
	Prefix, RuntimeDir, StateDir string
	// KeepState keeps the desired state file (the next daemon rebuilds from it).
	KeepState bool
	// Force cleans up even while a daemon holds the prefix (its locks stay).
	Force  bool
	Logger *slog.Logger
}

// Cleanup removes everything with the prefix from the kernel and the runtime
// directory, without a daemon and without the state: instances (processes,
// cgroups, namespaces), VNET namespaces, and (unless KeepState) the state
// directory. It is idempotent.
func Cleanup(ctx context.Context, o CleanupOptions) error {
	if o.Prefix == "" {
		o.Prefix = defaults.Prefix
	}
	if o.RuntimeDir == "" {
		o.RuntimeDir = defaults.RuntimeDir
	}
	if o.StateDir == "" {
		o.StateDir = defaults.StateDir
	}
	plock, err := LockPrefix(o.Prefix)
	if err != nil && !(o.Force && errors.Is(err, lockfile.ErrHeld)) {
		return err
	}
	h, err := machine.New(machine.Config{Prefix: o.Prefix, RuntimeDir: o.RuntimeDir, StateDir: o.StateDir, Logger: o.Logger})
	if err != nil {
		plock.Close()
		return err
	}
	defer h.Close()
	var errs []error
	// The HTTPS endpoint and CA files for clients; a daemon writes them again.
	errs = append(errs, os.RemoveAll(gateway.PublicDir(o.RuntimeDir)))
	errs = append(errs, h.Manager().Cleanup(ctx))
	vnets, err := h.VNets(ctx)
	errs = append(errs, err)
	for _, n := range vnets {
		errs = append(errs, h.DeleteVNet(ctx, n))
	}
	errs = append(errs, os.RemoveAll(filepath.Join(o.StateDir, "host"))) // the machine's records, host keys and logs
	if !o.KeepState {
		// The state and the key its protected settings are sealed with go
		// together (a key without its state protects nothing).
		for _, f := range []string{model.StateFile, model.KeyFile, monitor.StateFile} {
			if err := os.Remove(filepath.Join(o.StateDir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		// A live daemon's lock stays (cleanup --force): only a free one goes.
		_, err := lockfile.RemoveIfFree(filepath.Join(o.StateDir, model.LockFile))
		errs = append(errs, err)
		// The CA and the service principal go with the state: the next
		// daemon makes new ones (run `vmss az-config` again).
		errs = append(errs, os.RemoveAll(gateway.TLSDir(o.StateDir)), os.RemoveAll(gateway.IdentityDir(o.StateDir)))
		_ = os.Remove(o.StateDir) // only when empty
	}
	if plock != nil { // held by this cleanup: no daemon uses the prefix
		errs = append(errs, plock.Remove())
	}
	return errors.Join(errs...)
}
