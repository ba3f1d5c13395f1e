package machine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/ssh"

	"github.com/vmss-emulator/vmss/dns"
	"github.com/vmss-emulator/vmss/instance"
	"github.com/vmss-emulator/vmss/lb"
	"github.com/vmss-emulator/vmss/model"
	"github.com/vmss-emulator/vmss/nat"
	"github.com/vmss-emulator/vmss/nsnet"
	"github.com/vmss-emulator/vmss/reconcile"
	"github.com/vmss-emulator/vmss/sshd"
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
	Logger              *slog.Logger
}

// Machine implements reconcile.Kernel.
type Machine struct {
	cfg   Config
	log   *slog.Logger
	vnets *vnet.Manager
	inst  *instance.Manager
	base  context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	rsa   chan struct{}
	recMu sync.Mutex

	mu          sync.Mutex
	dnsSrv      map[string]*dnsServer       // VNET netns -> server
	spaces      map[string]*nsnet.Namespace // VNET netns -> dialer home
	ssh         map[string]*sshServer       // instance netns -> server
	health      map[string]*healthProbe     // instance netns -> app health
	engines     map[string]*lb.Engine       // lb key -> engine
	nat         *nat.Table
	natChosen   map[string]uint16 // jumpbox mapping key -> port in use
	endpoints   map[string]string // instance netns -> ssh endpoint of its public IP
	endpointErr map[string]error  // instance netns -> why its public IP has no ssh endpoint
	natOwner    map[string]string // public addr/proto -> owner key, for health views
	rsaBusy     time.Time         // background RSA key generation waits until then
}

type dnsServer struct {
	srv    *dns.Server
	cancel context.CancelFunc
	done   chan struct{}
	fp     string
}

type sshServer struct {
	srv  *sshd.Server
	keys *sshd.HostKeys
	done chan struct{}
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
	if cfg.SSHAuthTimeout == 0 {
		cfg.SSHAuthTimeout = 10 * time.Second
	}
	if cfg.WorkloadGrace == 0 {
		cfg.WorkloadGrace = time.Second
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Machine{
		cfg: cfg, log: lg, base: ctx, stop: cancel,
		vnets:       &vnet.Manager{Logger: lg},
		inst:        &instance.Manager{Prefix: cfg.Prefix, RuntimeDir: cfg.RuntimeDir, StateDir: cfg.StateDir, Logger: lg},
		rsa:         make(chan struct{}, 1),
		dnsSrv:      map[string]*dnsServer{},
		spaces:      map[string]*nsnet.Namespace{},
		ssh:         map[string]*sshServer{},
		health:      map[string]*healthProbe{},
		engines:     map[string]*lb.Engine{},
		natChosen:   map[string]uint16{},
		endpoints:   map[string]string{},
		endpointErr: map[string]error{},
		natOwner:    map[string]string{},
	}
	h.nat = &nat.Table{Logger: lg}
	h.wg.Add(1)
	go h.holdRSA()
	return h, nil
}

// rsaQuiet is how long background RSA host-key generation waits after the
// last instance creation, so a burst of creations is not slowed by it.
const rsaQuiet = 2 * time.Second

// pauseRSA postpones background RSA key generation (instances are being created).
func (h *Machine) pauseRSA() {
	h.mu.Lock()
	h.rsaBusy = time.Now().Add(rsaQuiet)
	h.mu.Unlock()
}

// holdRSA occupies the RSA generation slot while instances are being created.
func (h *Machine) holdRSA() {
	defer h.wg.Done()
	held := false
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		h.mu.Lock()
		busy := time.Now().Before(h.rsaBusy)
		h.mu.Unlock()
		switch {
		case busy && !held:
			select {
			case h.rsa <- struct{}{}:
				held = true
			default: // a key is being generated now; hold the slot next time
			}
		case !busy && held:
			<-h.rsa
			held = false
		}
		select {
		case <-h.base.Done():
			if held {
				<-h.rsa
			}
			return
		case <-t.C:
		}
	}
}

// Manager is the instance manager (for Cleanup and tools).
func (h *Machine) Manager() *instance.Manager { return h.inst }

func (h *Machine) dir() string { return filepath.Join(h.cfg.StateDir, "host") }

// VNetPrefix is the name prefix of VNET namespaces.
func (h *Machine) VNetPrefix() string { return model.VNetPrefix(h.cfg.Prefix) }

// Close stops every server and engine the host runs; kernel objects stay.
func (h *Machine) Close() error {
	h.mu.Lock()
	var errs []error
	for _, s := range h.ssh {
		errs = append(errs, s.srv.Close())
	}
	for _, e := range h.engines {
		errs = append(errs, e.Close())
	}
	for _, hp := range h.health {
		hp.stop()
	}
	errs = append(errs, h.nat.Close())
	for _, d := range h.dnsSrv {
		d.cancel()
	}
	for _, n := range h.spaces {
		n.Close()
	}
	h.mu.Unlock()
	h.stop()
	h.wg.Wait()
	return errors.Join(errs...)
}

// ---- VNETs ----

// EnsureVNet creates or updates a VNET namespace and runs its DNS server.
func (h *Machine) EnsureVNet(ctx context.Context, v reconcile.VNetSpec) error {
	spec := vnet.Spec{Netns: v.Netns}
	var prefixes []netip.Prefix
	for _, s := range v.Subnets {
		spec.Subnets = append(spec.Subnets, vnet.Subnet{Name: s.Name, Prefix: s.Prefix, Bridge: s.Bridge})
		prefixes = append(prefixes, s.Prefix)
	}
	if err := h.vnets.Ensure(ctx, spec); err != nil {
		return err
	}
	fp := fmt.Sprint(v.Suffix, prefixes)
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.spaces[v.Netns]; !ok {
		ns, err := nsnet.Open(nsnet.Path(v.Netns))
		if err != nil {
			return fmt.Errorf("open VNET namespace %s: %w", v.Netns, err)
		}
		h.spaces[v.Netns] = ns
	}
	if d := h.dnsSrv[v.Netns]; d != nil && d.fp == fp {
		return nil
	} else if d != nil {
		d.cancel()
		<-d.done
	}
	srv, err := dns.New(dns.Config{Suffix: v.Suffix, Prefixes: prefixes})
	if err != nil {
		return fmt.Errorf("DNS server of %s: %w", v.Netns, err)
	}
	dctx, cancel := context.WithCancel(h.base)
	d := &dnsServer{srv: srv, cancel: cancel, done: make(chan struct{}), fp: fp}
	h.dnsSrv[v.Netns] = d
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer close(d.done)
		if err := srv.ListenAndServe(dctx, nsnet.Path(v.Netns), ""); err != nil && dctx.Err() == nil {
			h.log.Error("DNS server stopped", "vnet", v.Netns, "err", err)
		}
	}()
	return nil
}

// DeleteVNet stops a VNET's servers and removes its namespace.
func (h *Machine) DeleteVNet(ctx context.Context, netns string) error {
	h.mu.Lock()
	d := h.dnsSrv[netns]
	delete(h.dnsSrv, netns)
	ns := h.spaces[netns]
	delete(h.spaces, netns)
	h.mu.Unlock()
	if d != nil {
		d.cancel()
		<-d.done
	}
	if ns != nil {
		ns.Close()
	}
	return h.vnets.Delete(ctx, netns)
}

// VNets lists the VNET namespaces with the host's prefix.
func (h *Machine) VNets(ctx context.Context) ([]string, error) {
	return vnet.List(h.VNetPrefix())
}

func (h *Machine) space(netns string) *nsnet.Namespace {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.spaces[netns]
}

// ---- instances ----

// Instances observes the instances that exist.
func (h *Machine) Instances(ctx context.Context) (map[string]reconcile.Observed, error) {
	names, err := h.inst.List(ctx)
	if err != nil && len(names) == 0 {
		return nil, err
	}
	out := make(map[string]reconcile.Observed, len(names))
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range names {
		r, _ := h.readRecord(n)
		o := reconcile.Observed{
			Complete: r.Complete, BuildGen: r.BuildGen, RestartGen: r.RestartGen, ModelGen: r.ModelGen,
			Extensions: r.Extensions, SSHEndpoint: h.endpoints[n],
		}
		if s := h.ssh[n]; s != nil {
			o.Started = true
		}
		if hp := h.health[n]; hp != nil {
			o.Health = hp.state()
		}
		out[n] = o
	}
	return out, nil
}

// CreateInstance builds the instance's namespaces, files, NIC and host keys.
func (h *Machine) CreateInstance(ctx context.Context, in reconcile.InstanceSpec) error {
	h.pauseRSA()
	if err := h.updateRecord(in.Netns, func(r *record) { *r = record{VNetNetns: in.VNetNetns} }); err != nil {
		return err
	}
	spec := instance.Spec{
		Name:         in.Netns,
		Hostname:     in.ComputerName,
		AdminUser:    in.AdminUser,
		PrivateIP:    in.Addr.Addr(),
		SearchDomain: in.DNSSuffix,
	}
	if err := h.inst.Create(ctx, spec); err != nil {
		return err
	}
	mac, err := parseMAC(in.MAC)
	if err != nil {
		return err
	}
	if err := h.vnets.Attach(ctx, in.VNetNetns, vnet.NIC{
		InstanceNetns: in.Netns, Bridge: in.Bridge, Addr: in.Addr, Gateway: in.Gateway, MAC: mac,
	}); err != nil {
		return fmt.Errorf("attach %s to its subnet: %w", in.VMName, err)
	}
	if _, err := sshd.LoadOrCreateHostKeys(h.base, h.keyDir(in.Netns), sshd.HostKeyOptions{RSABits: 2048, Limit: h.rsa, Logger: h.log}); err != nil {
		return fmt.Errorf("host keys of %s: %w", in.VMName, err)
	}
	return h.updateRecord(in.Netns, func(r *record) {
		*r = record{Complete: true, BuildGen: in.BuildGen, VNetNetns: in.VNetNetns}
	})
}

func (h *Machine) keyDir(netns string) string { return filepath.Join(h.dir(), "hostkeys", netns) }

func (h *Machine) logDir(netns string) string { return filepath.Join(h.dir(), "logs", netns) }

// StartInstance serves SSH inside the instance and starts its workload.
func (h *Machine) StartInstance(ctx context.Context, in reconcile.InstanceSpec, rerun bool) error {
	if err := h.serveSSH(ctx, in); err != nil {
		return err
	}
	key := fmt.Sprintf("%d/%d/%d", in.BuildGen, in.RestartGen, in.ModelGen)
	r, _ := h.readRecord(in.Netns)
	if rerun || r.WorkKey != key {
		if rerun {
			// A restart or an upgrade ends the old workload first.
			if err := h.inst.Stop(ctx, in.Netns); err != nil {
				return err
			}
		}
		views, err := h.runExtensions(ctx, in)
		_ = h.updateRecord(in.Netns, func(r *record) { r.Extensions = views })
		if err != nil {
			return err
		}
	}
	h.startHealth(in)
	return h.updateRecord(in.Netns, func(r *record) {
		r.RestartGen, r.ModelGen, r.WorkKey = in.RestartGen, in.ModelGen, key
	})
}

func (h *Machine) serveSSH(ctx context.Context, in reconcile.InstanceSpec) error {
	auth := sshd.Auth{User: in.AdminUser, Password: in.Password, PasswordAuth: in.Password != ""}
	for _, k := range in.PublicKeys {
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k))
		if err != nil {
			return fmt.Errorf("SSH key of %s: %w", in.VMName, err)
		}
		auth.AuthorizedKeys = append(auth.AuthorizedKeys, pk)
	}
	h.mu.Lock()
	if s := h.ssh[in.Netns]; s != nil {
		h.mu.Unlock()
		s.srv.SetAuth(auth)
		return nil
	}
	h.mu.Unlock()
	keys, err := sshd.LoadOrCreateHostKeys(h.base, h.keyDir(in.Netns), sshd.HostKeyOptions{RSABits: 2048, Limit: h.rsa, Logger: h.log})
	if err != nil {
		return fmt.Errorf("host keys of %s: %w", in.VMName, err)
	}
	exe, err := h.inst.Exe()
	if err != nil {
		return err
	}
	spec, err := h.inst.Lookup(in.Netns)
	if err != nil {
		return err
	}
	path := h.inst.NetnsPath(in.Netns)
	srv, err := sshd.New(sshd.Config{
		HostKeys:    keys.Signers,
		Auth:        auth,
		Shell:       spec.Shell,
		Home:        spec.Home(),
		Runner:      runner{m: h.inst, name: in.Netns},
		Dial:        instanceDialer(path, spec),
		SFTPCommand: []string{exe, "sftp-server"},
		AuthTimeout: h.cfg.SSHAuthTimeout,
		Logger:      h.log.With("instance", in.VMName),
	})
	if err != nil {
		return fmt.Errorf("SSH server of %s: %w", in.VMName, err)
	}
	ln, err := nsnet.ListenTCP(ctx, path, "0.0.0.0:22")
	if err != nil {
		return fmt.Errorf("SSH listener in %s: %w", in.VMName, err)
	}
	s := &sshServer{srv: srv, keys: keys, done: make(chan struct{})}
	h.mu.Lock()
	h.ssh[in.Netns] = s
	h.mu.Unlock()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer close(s.done)
		if err := srv.Serve(h.base, quickAckListener{ln}); err != nil && !errors.Is(err, sshd.ErrServerClosed) && h.base.Err() == nil {
			h.log.Error("SSH server stopped", "instance", in.VMName, "err", err)
		}
	}()
	return nil
}

// StopInstance ends SSH sessions and kills every process of the instance.
func (h *Machine) StopInstance(ctx context.Context, netns string) error {
	h.mu.Lock()
	s := h.ssh[netns]
	delete(h.ssh, netns)
	hp := h.health[netns]
	delete(h.health, netns)
	h.mu.Unlock()
	if hp != nil {
		hp.stop()
	}
	if s != nil {
		_ = s.srv.Close()
		<-s.done
	}
	if err := h.inst.Stop(ctx, netns); err != nil {
		return err
	}
	if _, ok := h.readRecord(netns); ok {
		return h.updateRecord(netns, func(r *record) { r.WorkKey = "" })
	}
	return nil
}

// DeleteInstance removes the instance, its keys, logs and record.
func (h *Machine) DeleteInstance(ctx context.Context, netns string) error {
	if err := h.StopInstance(ctx, netns); err != nil && !errors.Is(err, instance.ErrNotFound) {
		return err
	}
	if err := h.inst.Delete(ctx, netns); err != nil {
		return err
	}
	// The kernel tears a deleted namespace down asynchronously; remove the
	// veth pair now so a rebuild can attach again at once.
	rec, _ := h.readRecord(netns)
	h.mu.Lock()
	delete(h.endpoints, netns)
	delete(h.endpointErr, netns)
	vnets := []string{rec.VNetNetns}
	if rec.VNetNetns == "" {
		vnets = sortedKeys(h.spaces)
	}
	h.mu.Unlock()
	for _, v := range vnets {
		if err := h.vnets.Detach(ctx, v, vnet.VethName(netns)); err != nil {
			return fmt.Errorf("detach %s: %w", netns, err)
		}
	}
	for _, d := range []string{h.keyDir(netns), h.logDir(netns)} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	return h.removeRecord(netns)
}

// runner starts SSH session programs inside an instance as its admin.
type runner struct {
	m    *instance.Manager
	name string
}

// Command implements sshd.Runner. The client's environment reaches only the
// user's program: it is applied by env(1) after the switch to the user.
func (r runner) Command(ctx context.Context, req sshd.ExecRequest) (*exec.Cmd, error) {
	argv := req.Argv
	if req.Login && len(argv) == 1 {
		argv = []string{argv[0], "-l"}
	}
	full := append([]string{"/usr/bin/env", "-"}, req.Env...)
	full = append(full, argv...)
	return r.m.Command(ctx, r.name, instance.ExecRequest{Argv: full, Dir: req.Dir})
}

func parseMAC(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	var b [6]byte
	n, err := fmt.Sscanf(strings.ReplaceAll(s, "-", ":"), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5])
	if err != nil || n != 6 {
		return nil, fmt.Errorf("MAC address %q is not valid", s)
	}
	return b[:], nil
}

// sortedKeys returns the keys of a map in order.
func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
