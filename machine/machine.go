package machine

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmss-emulator/vmss/instance"
	"github.com/vmss-emulator/vmss/machine/dataplane"
	"github.com/vmss-emulator/vmss/machine/sshservice"
	"github.com/vmss-emulator/vmss/machine/workload"
	"github.com/vmss-emulator/vmss/model"
	"github.com/vmss-emulator/vmss/nsnet"
	"github.com/vmss-emulator/vmss/vnet"
)

// Config configures a Machine. Zero values take the defaults given.
type Config struct {
	Prefix     string // instance name prefix; default "vmss-"
	RuntimeDir string // default /run/vmss
	StateDir   string // default /var/lib/vmss
	// Registerer receives load-balancer metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// SSHAuthTimeout drops connections that have not authenticated; default 10s.
	SSHAuthTimeout time.Duration
	// WorkloadGrace is how long an extension command may run before it counts
	// as the instance's long-running workload; default 1s.
	WorkloadGrace time.Duration
	// HealthInterval overrides the Application Health extension's probe
	// interval (tests); zero uses the extension's settings.
	HealthInterval time.Duration
	// HealthIntervalScale multiplies the extension's interval (like the load
	// balancer's --probe-interval-scale); zero or negative means 1.
	HealthIntervalScale float64
	// Limits of each instance, as instance.Manager's PidsMax, MemoryMax
	// (bytes) and HomesSize (bytes, the filesystem of all instances'
	// homes): zero takes the defaults, negative means no cap.
	InstancePids, InstanceMemory, InstancesDisk int64
	Logger                                      *slog.Logger
}

// Machine implements reconcile.Kernel. It builds VNETs and instances itself
// and hands the rest to its rooms, each with its own lock: the data plane
// (DNS, inbound NAT, load balancers), the workload runner (extensions,
// Application Health, run-command) and the SSH service.
type Machine struct {
	cfg     Config
	log     *slog.Logger
	vnets   *vnet.Manager
	inst    *instance.Manager
	spaces  *dataplane.Namespaces
	plane   *dataplane.Plane
	work    *workload.Runner
	ssh     *sshservice.Service
	records records
}

// New returns a Machine. Close releases everything it serves (not the kernel
// objects: the reconciler or Cleanup removes those).
func New(cfg Config) (*Machine, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "vmss-"
	}
	if cfg.RuntimeDir == "" {
		cfg.RuntimeDir = "/run/vmss"
	}
	if cfg.StateDir == "" {
		cfg.StateDir = "/var/lib/vmss"
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	m := &Machine{
		cfg: cfg, log: lg,
		vnets: &vnet.Manager{Logger: lg},
		inst: &instance.Manager{Prefix: cfg.Prefix, RuntimeDir: cfg.RuntimeDir, StateDir: cfg.StateDir, Logger: lg,
			PidsMax: cfg.InstancePids, MemoryMax: cfg.InstanceMemory, HomesSize: cfg.InstancesDisk},
	}
	m.records = records{dir: filepath.Join(m.dir(), "records")}
	m.spaces = dataplane.NewNamespaces(m.vnets)
	m.plane = dataplane.New(dataplane.Config{Network: m.spaces, Registerer: cfg.Registerer, Logger: lg})
	kernel := instances{m.inst}
	m.work = workload.New(workload.Config{
		Instances: kernel, LogDir: filepath.Join(m.dir(), "logs"), WorkloadGrace: cfg.WorkloadGrace,
		HealthInterval: cfg.HealthInterval, HealthIntervalScale: cfg.HealthIntervalScale, Logger: lg,
	})
	m.ssh = sshservice.New(sshservice.Config{Instances: kernel, KeyDir: filepath.Join(m.dir(), "hostkeys"), AuthTimeout: cfg.SSHAuthTimeout, Logger: lg})
	return m, nil
}

// instances is the instance manager as the rooms see it.
type instances struct{ *instance.Manager }

// Dialer dials from inside the named instance.
func (i instances) Dialer(name string) nsnet.DialFunc { return nsnet.Dialer(i.NetnsPath(name)) }

// ListenTCP listens inside the named instance.
func (i instances) ListenTCP(ctx context.Context, name, addr string) (net.Listener, error) {
	ln, err := nsnet.ListenTCP(ctx, i.NetnsPath(name), addr)
	if err != nil {
		return nil, err
	}
	return ln, nil
}

// Manager is the instance manager (for Cleanup and tools).
func (m *Machine) Manager() *instance.Manager { return m.inst }

// DataPlane is the room that applies DNS, inbound NAT and load balancing,
// with its views (load balancer health, probe states, SSH endpoints).
func (m *Machine) DataPlane() *dataplane.Plane { return m.plane }

// Workloads is the room that runs extensions, Application Health probes and
// run-command.
func (m *Machine) Workloads() *workload.Runner { return m.work }

func (m *Machine) dir() string { return filepath.Join(m.cfg.StateDir, "host") }

// VNetPrefix is the name prefix of VNET namespaces.
func (m *Machine) VNetPrefix() string { return model.VNetPrefix(m.cfg.Prefix) }

// Close stops every server and engine the machine runs; kernel objects stay.
func (m *Machine) Close() error {
	errs := []error{m.ssh.Close(), m.plane.Close()}
	m.work.Close()
	return errors.Join(errs...)
}
