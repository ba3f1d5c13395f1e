package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/vmss-emulator/vmss/internal/defaults"

	"github.com/spf13/cobra"

	"github.com/vmss-emulator/vmss/api"
	"github.com/vmss-emulator/vmss/daemon"
	"github.com/vmss-emulator/vmss/reconcile"
)

// daemonFlags are the options of serve and up.
type daemonFlags struct {
	o        daemon.Options
	pipRange string
	logLevel string
	// Instance limits in MiB (memory) and GiB (disk), as given.
	memMiB, diskGiB int64
}

func (f *daemonFlags) add(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVar(&f.o.StateDir, "state-dir", defaults.StateDir, "where the desired state is kept")
	fl.StringVar(&f.o.RuntimeDir, "runtime-dir", defaults.RuntimeDir, "runtime files (namespace mounts, binary copy)")
	fl.StringVar(&f.o.Prefix, "prefix", defaults.Prefix, "name prefix of every kernel object the emulator makes")
	fl.StringVar(&f.pipRange, "public-ip-range", "127.77.0.0/16", "host addresses given to public IPs")
	fl.BoolVar(&f.o.LiftLimits, "lift-limits", false, "ignore Azure's instance limits (100 per placement group, 1000 per scale set)")
	fl.StringVar(&f.o.HTTPSAddr, "https-addr", "127.0.0.1:8443", "ARM over HTTPS for az and the Azure SDKs (loopback only; \"off\" disables); `vmss az-config` sets az up for it")
	fl.IntVar(&f.o.PageSize, "page-size", api.DefaultPageSize, "items per page of API lists (instances, groups, resources); longer lists continue at their nextLink")
	fl.StringVar(&f.o.MetricsAddr, "metrics-addr", "127.0.0.1:9100", "Prometheus metrics address (loopback only; \"off\" disables)")
	fl.BoolVar(&f.o.DashboardReadOnly, "dashboard-readonly", false, "serve the dashboard (on --metrics-addr) without its actions (scale, stop, start, ...)")
	fl.Float64Var(&f.o.ProbeIntervalScale, "probe-interval-scale", 1, "multiply the intervals of load-balancer health probes and the Application Health extension (e.g. 0.1 for fast demos and tests)")
	fl.Float64Var(&f.o.TimeScale, "time-scale", 1, "multiply every autoscale duration (time grain, window, cooldown, evaluation interval) and the metric sampling interval, e.g. 0.02 turns 5 minutes into 6 s; metrics keep wall-clock times")
	fl.DurationVar(&f.o.DrainPeriod, "drain-period", 5*time.Second, "default drain period of backend pools that set no drainPeriodInSeconds")
	fl.IntVar(&f.o.Parallel, "parallel", reconcile.DefaultParallel, "instance operations at once")
	fl.DurationVar(&f.o.StopTimeout, "stop-timeout", 30*time.Second, "how long a graceful stop (and up's teardown) may take before the daemon exits anyway, reporting what it left")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.Int64Var(&f.o.InstancePids, "instance-max-processes", 1024, "processes and threads each instance may have (-1: no cap)")
	fl.Int64Var(&f.memMiB, "instance-memory-mib", 1024, "memory of each instance in MiB, its /tmp and /dev/shm included (-1: no cap)")
	fl.Int64Var(&f.diskGiB, "instances-disk-gib", 8, "size in GiB of the filesystem of all instances' /home and /root, made on first use in --state-dir (at most a quarter of the free space there; -1: none, they fill the state directory's filesystem)")
}

func (f *daemonFlags) options(g *globals) (daemon.Options, error) {
	o := f.o
	o.Socket = g.socket
	for _, v := range []struct {
		flag string
		n    int64
		unit int64
		dst  *int64
	}{{"instance-memory-mib", f.memMiB, 1 << 20, &o.InstanceMemory}, {"instances-disk-gib", f.diskGiB, 1 << 30, &o.InstancesDisk}} {
		switch {
		case v.n < 0:
			*v.dst = -1
		case v.n == 0:
			return o, fmt.Errorf("--%s 0: give a size, or -1 for no cap", v.flag)
		default:
			*v.dst = v.n * v.unit
		}
	}
	if o.InstancePids == 0 {
		return o, fmt.Errorf("--instance-max-processes 0: give a number, or -1 for no cap")
	}
	p, err := netip.ParsePrefix(f.pipRange)
	if err != nil {
		return o, fmt.Errorf("--public-ip-range %q: %w", f.pipRange, err)
	}
	o.PublicIPRange = p
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToUpper(f.logLevel))); err != nil {
		return o, fmt.Errorf("--log-level %q: use debug, info, warn or error", f.logLevel)
	}
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	return o, nil
}

func serveCmd(g *globals) *cobra.Command {
	var f daemonFlags
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: the ARM API on a root-only unix socket, and everything it deploys",
		Long: `Run the vmss daemon in the foreground. It serves the ARM API on --socket (mode 0600),
keeps the desired state in --state-dir, and on start adopts what a previous run left in
the kernel. Stopping it (Ctrl-C, SIGTERM) stops serving but keeps instances: the next
'vmss serve' picks them up. 'vmss cleanup' removes everything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needRoot(); err != nil {
				return err
			}
			o, err := f.options(g)
			if err != nil {
				return err
			}
			if path := os.Getenv("VMSS_CPUPROFILE"); path != "" {
				stop, err := startCPUProfile(path)
				if err != nil {
					return err
				}
				defer stop()
			}
			d, err := daemon.Start(cmd.Context(), o)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "vmss daemon serving on %s (state %s). Stop with Ctrl-C.\n", o.Socket, o.StateDir)
			if u := d.DashboardURL(); u != "" {
				fmt.Printf("Dashboard: %s\n", u)
			}
			select {
			case <-cmd.Context().Done():
			case err := <-d.Err():
				return errors.Join(err, d.Stop())
			}
			return d.Stop()
		},
	}
	f.add(c)
	return c
}

func cleanupCmd(g *globals) *cobra.Command {
	var o daemon.CleanupOptions
	var force bool
	c := &cobra.Command{
		Use:   "cleanup",
		Short: "Remove everything the emulator made, even with the daemon dead and the state lost",
		Long: `Remove every instance (processes, cgroups, namespaces), every VNET namespace and the
runtime files with the prefix, then the state (unless --keep-state). It finds what to
remove in the kernel by name prefix, so it works without a daemon and without the state.
Running it again does nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needRoot(); err != nil {
				return err
			}
			if !force {
				if _, err := g.client().Do(cmd.Context(), "GET", "/subscriptions/"+g.client().Subscription, nil, nil); err == nil {
					return fmt.Errorf("a vmss daemon is running on %s: stop it first (it would rebuild what cleanup removes), or pass --force", g.socket)
				}
			}
			ctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 5*time.Minute)
			defer cancel()
			o.Force = force
			if err := daemon.Cleanup(ctx, o); err != nil {
				return err
			}
			fmt.Fprintln(os.Stderr, "Removed everything with prefix", o.Prefix)
			return nil
		},
	}
	c.Flags().StringVar(&o.Prefix, "prefix", defaults.Prefix, "name prefix of the objects to remove")
	c.Flags().StringVar(&o.StateDir, "state-dir", defaults.StateDir, "state directory")
	c.Flags().StringVar(&o.RuntimeDir, "runtime-dir", defaults.RuntimeDir, "runtime directory")
	c.Flags().BoolVar(&o.KeepState, "keep-state", false, "keep the desired state (the next daemon rebuilds from it)")
	c.Flags().BoolVar(&force, "force", false, "clean up even though a daemon answers or holds the prefix (its lock files stay)")
	return c
}

// startCPUProfile writes a CPU profile of the daemon to path until it stops
// (VMSS_CPUPROFILE=/tmp/vmss.pprof sudo -E vmss serve).
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("VMSS_CPUPROFILE: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("VMSS_CPUPROFILE: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
