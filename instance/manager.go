package instance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vmss-emulator/vmss/internal/defaults"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/vmss-emulator/vmss/instance/cgroup"
)

// ErrNotFound is returned (wrapped) for an instance that does not exist.
var ErrNotFound = errors.New("instance not found")

// netnsDir is where named network namespaces live (as with `ip netns`).
const netnsDir = "/run/netns"

// Manager creates, runs commands in, stops and deletes instances. Instances
// of one Manager share its Prefix; several Managers (one per prefix) may
// share RuntimeDir and StateDir. Methods are safe for concurrent use;
// operations on one instance are serialized, different instances proceed in
// parallel. A Manager must not be copied after first use.
//
// Everything a Manager creates carries its Prefix in the name, so Cleanup
// finds it from the kernel and the file system alone.
type Manager struct {
	// RuntimeDir holds instances/, a private tmpfs with, per instance,
	// <name>/{mnt,uts} (the namespaces' bind mounts) and <name>/etc/ (its
	// generated /etc files), and bin/ (see Exe). Zero means /run/vmss. It
	// must be visible inside instances, so not under /tmp, /home, /root or
	// /dev/shm.
	RuntimeDir string
	// StateDir holds what outlives a reboot: instances/<name>/ with the
	// recorded spec and the instance's /home and /root. Zero means
	// /var/lib/vmss.
	StateDir string
	// Prefix starts every instance name. The cgroup of an instance is
	// <cgroup hierarchy>/<Prefix without trailing "-_.">/<name>. Zero means
	// DefaultPrefix.
	Prefix string
	// CgroupRoot is a directory inside a mounted cgroup filesystem under
	// which the Prefix group is created, e.g. /sys/fs/cgroup/unified or a
	// delegated subtree. Zero means detect (see package cgroup).
	CgroupRoot string
	// PidsMax caps the processes and threads of each instance (its cgroup's
	// pids.max), so a fork bomb ends at the cap; zero means DefaultPidsMax,
	// negative means no cap.
	PidsMax int64
	// MemoryMax caps each instance's memory in bytes (its tmpfs files
	// included); at the cap the kernel's OOM killer kills a process of that
	// instance only. Zero means DefaultMemoryMax, negative means no cap.
	MemoryMax int64
	// TmpSize and ShmSize cap the instance's /tmp and /dev/shm tmpfs, in
	// bytes; zero means DefaultTmpSize and DefaultShmSize.
	TmpSize, ShmSize int64
	// HomesSize caps the filesystem that holds the instances' files (their
	// /home and /root), an image mounted on StateDir/instances (see
	// DefaultHomesSize); zero means DefaultHomesSize, negative means no
	// filesystem of their own (they fill the state directory's).
	HomesSize int64
	// UIDDir holds the claims of allocated admin uids (see Spec.AdminUID),
	// shared by every Manager of the host. Zero means /run/vmss-uids; set it
	// only to isolate tests.
	UIDDir string
	// NetnsEtcDir is where `ip netns exec` looks for a namespace's own
	// files: each instance gets <NetnsEtcDir>/<name>/{resolv.conf,hosts},
	// so commands entered that way resolve through the VNET's DNS as the
	// instance does. Zero means /etc/netns; set it only to isolate tests.
	NetnsEtcDir string
	// Logger receives progress and repair messages; nil discards them.
	Logger *slog.Logger

	mu        sync.Mutex
	hier      *cgroup.Hierarchy    // resolved cgroup hierarchy
	groupHier []cgroup.Hierarchy   // where each instance has a group (GroupHierarchies)
	allHier   []cgroup.Hierarchy   // hier first, then every other mounted one
	tools     *execTools           // resolved sh and nsenter
	locks     map[string]*nameLock // per-instance locks
	specs     map[string]Spec      // recorded specs, by name
	// idle are instances whose namespaces this Manager built and in which
	// it has started nothing since (see Stop).
	idle   map[string]bool
	nsDirs []string // namespace mount points, once set up
	// homesReady: StateDir/instances is set up (see ensureHomes).
	homesReady bool
	// homesOwn: StateDir/instances is the instances' own filesystem.
	homesOwn  bool
	homesSync groupSync // commits of that filesystem

	exeMu sync.Mutex
	exe   string // copy of the executable, once made

	uids uidClaims // what this Manager knows of the admin uid claims

	tmplMu     sync.Mutex
	tmpl       *mntTemplate  // current template mount namespace (see acquireTemplate)
	tmplMaking chan struct{} // closed when the template being made is ready
	tmplOff    bool          // templates are not possible here

	sweeps sweeper // kills of processes that entered without the cgroup
}

type nameLock struct{ sync.Mutex }

// Default resource limits of an instance (see Manager). An Azure
// Standard_B1s VM has 1 GiB of memory; a Docker container's /dev/shm is 64
// MiB.
const (
	DefaultPidsMax   = 1024
	DefaultMemoryMax = 1 << 30
	DefaultTmpSize   = 256 << 20
	DefaultShmSize   = 64 << 20
)

func orDefault(v, def int64) int64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

func (m *Manager) limits() cgroup.Limits {
	return cgroup.Limits{Pids: orDefault(m.PidsMax, DefaultPidsMax), Memory: orDefault(m.MemoryMax, DefaultMemoryMax)}
}

// groupHierarchies returns the hierarchies in which each instance has a
// group: the kill hierarchy first, then those that enforce limits.
func (m *Manager) groupHierarchies() ([]cgroup.Hierarchy, error) {
	h, err := m.hierarchy()
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.groupHier == nil {
		gh, err := cgroup.GroupHierarchies(h)
		if err != nil {
			return nil, err
		}
		m.groupHier = gh
	}
	return slices.Clip(m.groupHier), nil // an append copies
}

// procsFiles returns the cgroup.procs files a process of instance name
// joins, one per hierarchy.
func (m *Manager) procsFiles(name string) ([]string, error) {
	hs, err := m.groupHierarchies()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, h := range hs {
		out = append(out, h.ProcsFile(m.group(name)))
	}
	return out, nil
}

const (
	defaultRuntimeDir = defaults.RuntimeDir
	defaultStateDir   = defaults.StateDir
	specFile          = "spec.json"
)

func (m *Manager) runtimeDir() string { return cmpOr(m.RuntimeDir, defaultRuntimeDir) }
func (m *Manager) stateDir() string   { return cmpOr(m.StateDir, defaultStateDir) }
func (m *Manager) prefix() string     { return cmpOr(m.Prefix, DefaultPrefix) }

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return filepath.Clean(v)
}

func (m *Manager) log() *slog.Logger {
	if m.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return m.Logger
}

// checkConfig validates the Manager's fields.
func (m *Manager) checkConfig() error {
	var errs []error
	if err := validName("prefix", m.prefix(), 32); err != nil {
		errs = append(errs, err)
	}
	for _, d := range []struct{ what, dir string }{{"RuntimeDir", m.runtimeDir()}, {"StateDir", m.stateDir()}} {
		if !filepath.IsAbs(d.dir) || d.dir == "/" {
			errs = append(errs, fmt.Errorf("%s %q must be an absolute path other than /", d.what, d.dir))
		}
	}
	for _, private := range []string{"/tmp", "/home", "/root", "/dev/shm"} {
		if d := m.runtimeDir(); d == private || strings.HasPrefix(d, private+"/") {
			errs = append(errs, fmt.Errorf("RuntimeDir %q is hidden inside instances (%s is private there): use e.g. %s", d, private, defaultRuntimeDir))
		}
	}
	return errors.Join(errs...)
}

// group returns the cgroup group (relative to the hierarchy) of the prefix,
// and of name when given.
func (m *Manager) group(name string) string {
	g := strings.TrimRight(m.prefix(), "-_.")
	if g == "" {
		g = "vmss"
	}
	if name == "" {
		return g
	}
	return g + "/" + name
}

// runRoot is the Manager's tmpfs, RuntimeDir/instances; see ensureNsDirs.
func (m *Manager) runRoot() string                 { return filepath.Join(m.runtimeDir(), "instances") }
func (m *Manager) runDir(name string) string       { return filepath.Join(m.runRoot(), name) }
func (m *Manager) nsFile(name, kind string) string { return filepath.Join(m.runDir(name), kind) }

// etcRoot is the Manager's second tmpfs, RuntimeDir/etc, which holds each
// instance's generated /etc files in etcRoot/<name> and nothing else: no
// mount is ever made on it, so cloning an instance's directory there
// (open_tree, which looks through the child mounts of the source's mount)
// costs the same whatever the number of instances. See ensureNsDirs.
func (m *Manager) etcRoot() string { return filepath.Join(m.runtimeDir(), "etc") }

// legacyEtcDir is where instances made by earlier versions keep their
// generated /etc files: RuntimeDir/instances/<name>/etc, beside their
// namespace pins.
func (m *Manager) legacyEtcDir(name string) string { return filepath.Join(m.runDir(name), "etc") }

// etcDir is the directory of the instance's generated /etc files:
// etcRoot/<name>, or the legacy one of an instance that has it (a running
// instance made by an earlier version binds its files from there, and
// keeps them until it is deleted).
func (m *Manager) etcDir(name string) string {
	if legacy := m.legacyEtcDir(name); fileExists(legacy) {
		return legacy
	}
	return filepath.Join(m.etcRoot(), name)
}

// netnsEtcRoot is NetnsEtcDir or /etc/netns.
func (m *Manager) netnsEtcRoot() string {
	if m.NetnsEtcDir != "" {
		return m.NetnsEtcDir
	}
	return "/etc/netns"
}

// netnsEtcDir is the instance's directory for `ip netns exec`.
func (m *Manager) netnsEtcDir(name string) string { return filepath.Join(m.netnsEtcRoot(), name) }
func (m *Manager) instDir(name string) string {
	return filepath.Join(m.stateDir(), "instances", name)
}

// NetnsPath returns the path of the instance's named network namespace,
// /run/netns/<name> (the namespace `ip netns exec <name>` enters).
func (m *Manager) NetnsPath(name string) string { return filepath.Join(netnsDir, name) }

// hierarchy returns the cgroup hierarchy, resolving it on first use.
func (m *Manager) hierarchy() (cgroup.Hierarchy, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hier != nil {
		return *m.hier, nil
	}
	var h cgroup.Hierarchy
	var err error
	if m.CgroupRoot != "" {
		h, err = cgroup.At(m.CgroupRoot)
	} else {
		h, err = cgroup.Detect()
	}
	if err != nil {
		return cgroup.Hierarchy{}, err
	}
	m.hier = &h
	m.log().Debug("cgroup hierarchy", "dir", h.Dir, "version", h.Version.String(), "controller", h.Controller)
	return h, nil
}

func (m *Manager) lock(name string) func() {
	m.mu.Lock()
	if m.locks == nil {
		m.locks = map[string]*nameLock{}
	}
	l := m.locks[name]
	if l == nil {
		l = &nameLock{}
		m.locks[name] = l
	}
	m.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Lookup returns the normalized spec recorded when name was created.
func (m *Manager) Lookup(name string) (Spec, error) {
	if err := m.checkName(name); err != nil {
		return Spec{}, err
	}
	m.mu.Lock()
	s, ok := m.specs[name]
	m.mu.Unlock()
	if ok {
		return s, nil
	}
	b, err := os.ReadFile(filepath.Join(m.instDir(name), specFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Spec{}, fmt.Errorf("instance %s (state %s): %w", name, m.instDir(name), ErrNotFound)
	}
	if err != nil {
		return Spec{}, fmt.Errorf("read spec of instance %s: %w", name, err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return Spec{}, fmt.Errorf("read spec of instance %s: %s: %w", name, filepath.Join(m.instDir(name), specFile), err)
	}
	m.remember(s)
	return s, nil
}

func (m *Manager) remember(s Spec) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.specs == nil {
		m.specs = map[string]Spec{}
	}
	m.specs[s.Name] = s
}

func (m *Manager) forget(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.specs, name)
	delete(m.idle, name)
}

// setIdle records whether nothing was started in instance name since this
// Manager built its namespaces.
func (m *Manager) setIdle(name string, idle bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !idle {
		delete(m.idle, name)
		return
	}
	if m.idle == nil {
		m.idle = map[string]bool{}
	}
	m.idle[name] = true
}

func (m *Manager) isIdle(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.idle[name]
}

// checkName validates the configuration and an instance name given to a
// method.
func (m *Manager) checkName(name string) error {
	if err := m.checkConfig(); err != nil {
		return err
	}
	if err := validName("instance name", name, 64); err != nil {
		return err
	}
	if !strings.HasPrefix(name, m.prefix()) {
		return fmt.Errorf("instance name %q does not start with the prefix %q", name, m.prefix())
	}
	return nil
}

// List returns the names of the instances with the Manager's prefix found in
// the kernel and on disk (network namespaces, namespace bind mounts, state
// directories, cgroups), complete or not, sorted. It needs no recorded
// state, so a restarted daemon can adopt or clean up what it finds.
func (m *Manager) List(ctx context.Context) ([]string, error) {
	if err := m.checkConfig(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var names []string
	var errs []error
	for _, dir := range []string{netnsDir, m.runRoot(), m.etcRoot(), filepath.Join(m.stateDir(), "instances")} {
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("list instances: %w", err))
		}
		for _, e := range ents {
			names = append(names, e.Name())
		}
	}
	hs, err := m.cgroupCandidates()
	errs = append(errs, err)
	for _, h := range hs {
		c, err := h.Children(m.group(""))
		errs = append(errs, err)
		names = append(names, c...)
	}
	out := names[:0]
	for _, n := range names {
		if strings.HasPrefix(n, m.prefix()) && n != m.prefix() && validName("", n, 64) == nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), errors.Join(errs...)
}

// Present reports which of names List would answer, looking only at those
// instances (a few stats each) rather than listing every directory: the
// cost of observing the instances that changed does not grow with the
// instances there are. Names that are not the Manager's are absent.
func (m *Manager) Present(ctx context.Context, names []string) (map[string]bool, error) {
	if err := m.checkConfig(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	hs, err := m.cgroupCandidates()
	out := make(map[string]bool, len(names))
	for _, n := range names {
		if !strings.HasPrefix(n, m.prefix()) || n == m.prefix() || validName("", n, 64) != nil {
			continue
		}
		found := false
		for _, dir := range []string{netnsDir, m.runRoot(), m.etcRoot(), filepath.Join(m.stateDir(), "instances")} {
			if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
				found = true
				break
			}
		}
		for _, h := range hs {
			if found {
				break
			}
			found = h.Exists(m.group(n))
		}
		out[n] = found
	}
	if err != nil {
		return out, fmt.Errorf("look up instances: %w", err)
	}
	return out, nil
}

// cgroupCandidates returns the Manager's hierarchy plus every other mounted
// one, where a previous configuration may have left groups.
func (m *Manager) cgroupCandidates() ([]cgroup.Hierarchy, error) {
	h, err := m.hierarchy()
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.allHier != nil {
		return m.allHier, nil
	}
	all, err := cgroup.All()
	if err != nil {
		return []cgroup.Hierarchy{h}, err
	}
	out := []cgroup.Hierarchy{h}
	for _, a := range all {
		if !slices.ContainsFunc(out, func(o cgroup.Hierarchy) bool { return o.Dir == a.Dir }) {
			out = append(out, a)
		}
	}
	m.allHier = out
	return out, nil
}
