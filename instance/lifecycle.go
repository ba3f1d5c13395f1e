package instance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/vmss-emulator/vmss/instance/cgroup"
	"github.com/vmss-emulator/vmss/internal/atomicfile"
	"github.com/vmss-emulator/vmss/nsnet"
)

// Create makes instance spec.Name: its network namespace (with lo up), its
// UTS namespace (host name), its mount namespace (private /tmp and /dev/shm,
// its own /home, /root, /etc/{hostname,hosts,resolv.conf,passwd,group} and
// /sys), its state directory and its cgroup. No process is left running.
//
// Create is idempotent. For a complete instance it only rewrites the /etc
// files and the host name when spec changed them (live: processes see the
// change). A partial instance (e.g. a namespace bind mount is missing after
// a crash) is repaired: the processes still running in it are killed, the
// missing namespaces are rebuilt, and an existing network namespace is kept
// (so interfaces attached to it survive) unless it is the missing part. On
// failure Create removes what it made and leaves what existed before.
//
// Invalid specs change nothing. The admin account (name, uid, gid) of an
// existing instance cannot change: Delete it first.
func (m *Manager) Create(ctx context.Context, spec Spec) (err error) {
	if err := m.checkConfig(); err != nil {
		return err
	}
	s, err := normalize(spec, m.prefix(), fileExists)
	if err != nil {
		return fmt.Errorf("create instance %s: %w", spec.Name, err)
	}
	hostPasswd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return fmt.Errorf("create instance %s: %w", s.Name, err)
	}
	hostGroup, err := os.ReadFile("/etc/group")
	if err != nil {
		return fmt.Errorf("create instance %s: %w", s.Name, err)
	}
	h, err := m.hierarchy()
	if err != nil {
		return fmt.Errorf("create instance %s: %w", s.Name, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	unlock := m.lock(s.Name)
	defer unlock()

	old, oldErr := m.Lookup(s.Name)
	if s.AdminUID == 0 {
		if cerr := m.assignAdminIDs(&s, spec.AdminGID, old, oldErr == nil); cerr != nil {
			return fmt.Errorf("create instance %s: %w", s.Name, cerr)
		}
		if oldErr != nil {
			// A new instance: give the uid back when Create fails.
			defer func() {
				if err != nil {
					_ = m.releaseUID(s.Name)
				}
			}()
		}
	}
	if err := checkHostIDs(s, hostPasswd, hostGroup); err != nil {
		return err
	}
	if oldErr == nil && !sameIdentity(old, s) {
		return fmt.Errorf("create instance %s: it exists with admin %s (uid %d, gid %d); Delete it first to use %s (uid %d, gid %d)",
			s.Name, old.AdminUser, old.AdminUID, old.AdminGID, s.AdminUser, s.AdminUID, s.AdminGID)
	}

	var undo []func() error
	defer func() {
		if err == nil {
			return
		}
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](); uerr != nil {
				err = errors.Join(err, fmt.Errorf("roll back: %w", uerr))
			}
		}
	}()

	nsDirs, err := m.ensureNsDirs()
	if err != nil {
		return fmt.Errorf("create instance %s: %w", s.Name, err)
	}
	if err := m.ensureHomes(); err != nil {
		return fmt.Errorf("create instance %s: %w", s.Name, err)
	}
	fresh, recreated, err := m.writeState(s, hostPasswd, hostGroup)
	if fresh {
		undo = append(undo, func() error {
			return errors.Join(os.RemoveAll(m.instDir(s.Name)), os.RemoveAll(m.etcDir(s.Name)),
				os.RemoveAll(filepath.Join(m.etcRoot(), s.Name)))
		})
	}
	if err != nil {
		return fmt.Errorf("create instance %s: %w", s.Name, err)
	}
	cgroupExisted := h.Exists(m.group(s.Name))
	if err := m.createCgroups(ctx, s.Name, &undo); err != nil {
		return fmt.Errorf("create instance %s: %w", s.Name, err)
	}
	return m.buildInstanceNamespaces(ctx, s, old, oldErr == nil, nsDirs, !fresh || cgroupExisted, recreated, &undo)
}

// buildInstanceNamespaces makes the instance's namespaces, or keeps them
// when they are whole and its files were not recreated (only its host name
// is updated). A partial instance (repair: it had a cgroup or some
// namespaces) has its processes killed and its namespaces made again; undo
// gets the network namespace when it is new.
func (m *Manager) buildInstanceNamespaces(ctx context.Context, s, old Spec, existed bool, nsDirs []string, maybePartial, recreated bool, undo *[]func() error) error {
	netPath, mntPath, utsPath := m.NetnsPath(s.Name), m.nsFile(s.Name, "mnt"), m.nsFile(s.Name, "uts")
	netOK, mntOK, utsOK := isNsfs(netPath), isNsfs(mntPath), isNsfs(utsPath)
	if netOK && mntOK && utsOK && !recreated {
		if !existed || old.Hostname != s.Hostname {
			if err := setHostname(utsPath, s.Hostname); err != nil {
				return fmt.Errorf("create instance %s: %w", s.Name, err)
			}
		}
		m.remember(s)
		return nil
	}

	// Partial: whatever still runs there lives in namespaces that are being
	// replaced.
	if maybePartial || mntOK || utsOK || netOK {
		m.log().Info("repairing partial instance", "instance", s.Name,
			"netns", netOK, "mnt", mntOK, "uts", utsOK)
		if err := m.killAll(ctx, s.Name, !netOK); err != nil {
			return fmt.Errorf("repair instance %s: %w", s.Name, err)
		}
	}
	for _, p := range []string{mntPath, utsPath, m.initFile(s.Name), m.pidNsFile(s.Name), m.ipcNsFile(s.Name)} {
		if err := unmountAndRemove(p); err != nil {
			return fmt.Errorf("repair instance %s: %w", s.Name, err)
		}
	}
	plan := nsPlan{name: s.Name, netns: netPath, hostname: s.Hostname, nsDirs: nsDirs,
		tmpfs: m.tmpfsMounts()}
	if !netOK {
		if err := unmountAndRemove(netPath); err != nil { // a stale file
			return fmt.Errorf("create instance %s: %w", s.Name, err)
		}
		plan.netns = ""
	}
	etc := m.etcDir(s.Name)
	for _, f := range etcNames {
		plan.binds = append(plan.binds, bindMount{filepath.Join(etc, f), "/etc/" + f})
	}
	dir := m.instDir(s.Name)
	plan.binds = append(plan.binds, bindMount{filepath.Join(dir, "home"), "/home"}, bindMount{filepath.Join(dir, "root"), "/root"},
		bindMount{filepath.Join(dir, "vartmp"), "/var/tmp"})
	createdNet, err := m.buildNamespaces(plan)
	if createdNet {
		*undo = append(*undo, func() error { return deleteNetns(s.Name) })
	}
	if err != nil {
		return err
	}
	m.remember(s)
	m.setIdle(s.Name, true)
	m.log().Debug("created instance", "instance", s.Name, "hostname", s.Hostname)
	return nil
}

// assignAdminIDs gives s its admin uid (and gid, unless gid is given): the
// recorded one of an existing instance, claimed again after a reboot, else
// a new one. An instance recorded with an id outside the allocated range,
// from before uids were allocated, keeps it until it is deleted or
// reimaged.
func (m *Manager) assignAdminIDs(s *Spec, gid int, old Spec, existed bool) error {
	uid := 0
	if existed {
		uid = old.AdminUID
	}
	if uid == 0 || uid >= AdminUIDBase && uid < AdminUIDBase+adminUIDCount {
		var err error
		if uid, err = m.claimUID(s.Name, uid); err != nil {
			return err
		}
	}
	s.AdminUID = uid
	if gid == 0 {
		s.AdminGID = uid
		if existed {
			s.AdminGID = old.AdminGID
		}
	}
	return nil
}

// createCgroups creates the instance's group in every hierarchy it joins,
// with the process and memory limits where the controller has them; undo
// gets the removal of each group that is new.
func (m *Manager) createCgroups(ctx context.Context, name string, undo *[]func() error) error {
	group := m.group(name)
	hs, err := m.groupHierarchies()
	if err != nil {
		return err
	}
	for _, gh := range hs {
		if !gh.Exists(group) {
			*undo = append(*undo, func() error { return gh.Remove(context.WithoutCancel(ctx), group) })
		}
		if err := gh.Create(group); err != nil {
			return err
		}
		if gh.Version == cgroup.V2 || gh.Controller == "pids" || gh.Controller == "memory" {
			if err := gh.SetLimits(group, m.limits()); err != nil {
				return err
			}
		}
		if gh.Controller == "blkio" { // disk I/O counted, for metrics only
			l := cgroup.Limits{AccountDevices: cgroup.BlockDevices(m.homesDir(), "/")}
			if err := gh.SetLimits(group, l); err != nil {
				m.log().Warn("instance disk I/O is not measured", "instance", name, "err", err)
			}
		}
	}
	return nil
}

// cleanupWorkers is how many instances Cleanup deletes at once.
const cleanupWorkers = 8

// etcNames are the /etc files each instance has its own copy of.
var etcNames = []string{"hostname", "hosts", "resolv.conf", "passwd", "group"}

// writeState creates or updates the instance's files: the generated /etc
// files in RuntimeDir/etc (see etcDir) and the state directory (spec, /home, /root). It
// reports whether the state directory is new, and whether a file or
// directory that the instance bind-mounts had to be created: a running
// instance still sees the old, deleted one, so its mount namespace must be
// rebuilt. Existing files are rewritten in place (same inode), so a running
// instance sees the new content.
func (m *Manager) writeState(s Spec, hostPasswd, hostGroup []byte) (fresh, recreated bool, err error) {
	dir, etc := m.instDir(s.Name), m.etcDir(s.Name)
	fresh = !fileExists(dir)
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{etc, 0o755}, {dir, 0o700}, {filepath.Join(dir, "home"), 0o755}, {filepath.Join(dir, "root"), 0o700}} {
		if !fileExists(d.path) {
			recreated = true
		}
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return fresh, recreated, err
		}
	}
	// The instance's own /var/tmp (world-writable and sticky, on disk as on
	// a VM; the host's would let instances pass files to one another). An
	// instance made before it existed keeps the host's until it is rebuilt.
	if vt := filepath.Join(dir, "vartmp"); !fileExists(vt) {
		if err := os.Mkdir(vt, 0o700); err != nil {
			return fresh, recreated, err
		}
		if err := os.Chmod(vt, 0o777|os.ModeSticky); err != nil {
			return fresh, recreated, err
		}
	}
	for _, f := range renderEtc(s, hostPasswd, hostGroup) {
		p := filepath.Join(etc, f.name)
		cur, err := os.ReadFile(p)
		if err == nil && bytes.Equal(cur, f.data) {
			continue
		}
		if errors.Is(err, fs.ErrNotExist) {
			recreated = true
		}
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return fresh, recreated, err
		}
	}
	if err := m.writeNetnsEtc(s, hostPasswd, hostGroup); err != nil {
		return fresh, recreated, err
	}
	// The admin's home: mode 0700, owned by the admin; an existing one is
	// left alone.
	home := filepath.Join(dir, "home", s.AdminUser)
	if err := os.Mkdir(home, 0o700); err == nil {
		err = os.Chown(home, s.AdminUID, s.AdminGID)
		if err != nil {
			return fresh, recreated, err
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return fresh, recreated, err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fresh, recreated, err
	}
	return fresh, recreated, m.writeSpecFile(filepath.Join(dir, specFile), b)
}

// netnsEtcNames are the files `ip netns exec` reads from /etc/netns/NAME:
// what resolves names (the instance's other /etc files live in its mount
// namespace only).
var netnsEtcNames = []string{"resolv.conf", "hosts"}

// writeNetnsEtc writes the instance's resolv.conf and hosts to
// /etc/netns/<name>, so `ip netns exec <name> ...` resolves through the
// VNET's DNS like a session inside the instance.
func (m *Manager) writeNetnsEtc(s Spec, hostPasswd, hostGroup []byte) error {
	dir := m.netnsEtcDir(s.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s for ip netns exec: %w", dir, err)
	}
	for _, f := range renderEtc(s, hostPasswd, hostGroup) {
		if !slices.Contains(netnsEtcNames, f.name) {
			continue
		}
		p := filepath.Join(dir, f.name)
		if cur, err := os.ReadFile(p); err == nil && bytes.Equal(cur, f.data) {
			continue
		}
		if err := replaceFile(p, f.data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// replaceFile replaces path atomically (a reader sees the old or the new
// content) but not durably: for files that Create writes again, whose loss
// in a crash costs nothing (a durable write waits for the disk twice).
func replaceFile(path string, data []byte, mode os.FileMode) error {
	return atomicfile.Replace(path, data, mode)
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeFileAtomic replaces path durably (see package atomicfile).
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	return atomicfile.Write(path, data, mode)
}

// ensureNsDirs makes RuntimeDir/instances and RuntimeDir/etc private
// tmpfs and /run/netns a shared mount point (see ensureMountPoint), once
// per Manager, and returns their real paths: the mount points a new
// instance's mount namespace drops (see detachNamespaceMounts).
func (m *Manager) ensureNsDirs() ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.nsDirs != nil {
		return m.nsDirs, nil
	}
	if err := nsnet.EnsureRunDir(); err != nil {
		return nil, err
	}
	netnsReal, err := filepath.EvalSymlinks(netnsDir)
	if err != nil {
		return nil, err
	}
	nsReal, err := ensureMountPoint(m.runRoot(), "tmpfs", unix.MS_PRIVATE)
	if err != nil {
		return nil, err
	}
	etcReal, err := ensureMountPoint(m.etcRoot(), "tmpfs", unix.MS_PRIVATE)
	if err != nil {
		return nil, err
	}
	m.nsDirs = []string{netnsReal, nsReal, etcReal}
	return m.nsDirs, nil
}

// deleteNetns unmounts (every layer, covered ones included) and removes
// /run/netns/<name>.
func deleteNetns(name string) error { return nsnet.Remove(name) }

// Stop kills every process of instance name (its cgroup, and anything that
// entered its mount namespace some other way) and waits until they are gone
// or ctx is done; namespaces and files stay, as the disks and NIC of a
// powered-off Azure VM do, while what lives in RAM goes: the PID and IPC
// namespaces (with the init) and the contents of /tmp and /dev/shm.
// Stopping an instance with no processes, or one that does not exist, does
// nothing. An instance in which this Manager has started nothing since it
// built its namespaces (a new one, before its first command) has nothing
// to kill and no RAM to lose: Stop returns at once, without looking through
// its cgroups and every process of the host, which would make creating
// and starting n instances cost n² (a process entered into it by hand,
// with nsenter on its pins, is not looked for then).
func (m *Manager) Stop(ctx context.Context, name string) error {
	if err := m.checkName(name); err != nil {
		return err
	}
	unlock := m.lock(name)
	defer unlock()
	if m.isIdle(name) {
		return nil
	}
	if err := m.killAll(ctx, name, false); err != nil {
		return fmt.Errorf("stop instance %s: %w", name, err)
	}
	// The init was killed with the rest; its PID and IPC namespaces go
	// (shared memory of a powered-off VM does not survive), the next
	// command starts a new init. /tmp and /dev/shm are RAM: the next start
	// empties them (not now: a Stop is often followed by Delete).
	if err := m.dropInitPins(name); err != nil {
		return fmt.Errorf("stop instance %s: %w", name, err)
	}
	if isNsfs(m.nsFile(name, "mnt")) {
		if err := os.WriteFile(m.stoppedFile(name), nil, 0o600); err != nil {
			return fmt.Errorf("stop instance %s: %w", name, err)
		}
	}
	return nil
}

// killAll kills the processes of an instance: its cgroup members, then any
// process still in its mount namespace, and with withNet also in its network
// namespace (on Delete, where other components' processes there must go too,
// or they would keep it alive).
func (m *Manager) killAll(ctx context.Context, name string, withNet bool) error {
	h, err := m.hierarchy()
	if err == nil {
		err = h.Kill(ctx, m.group(name))
	}
	ids, kinds := m.nsIDs(name, withNet)
	return errors.Join(err, m.sweep(ctx, ids, kinds))
}

// nsIDs returns the namespaces of an instance that the sweep looks for, and
// their kinds. A process that entered only its UTS namespace is not looked
// for: it would hold nothing of the instance.
func (m *Manager) nsIDs(name string, withNet bool) (map[nsID]bool, []string) {
	ids := map[nsID]bool{}
	kinds := []string{"mnt"}
	paths := []string{m.nsFile(name, "mnt")}
	if withNet {
		kinds = append(kinds, "net")
		paths = append(paths, m.NetnsPath(name))
	}
	for _, p := range paths {
		if id, ok := nsIDOf(p); ok {
			ids[id] = true
		}
	}
	return ids, kinds
}

// sweep kills the processes in the namespaces ids that are outside the
// cgroups (they entered through nsenter or `ip netns exec`); concurrent
// sweeps share their scans of /proc (see sweeper).
func (m *Manager) sweep(ctx context.Context, ids map[nsID]bool, kinds []string) error {
	_, err := m.sweeps.sweep(ctx, ids, kinds, m.log())
	return err
}

// Delete removes instance name: it kills all its processes, removes its
// cgroup, unmounts its namespaces (the network namespace is gone when its
// last user is), and removes its state directory. Delete is idempotent and
// works on partial instances; it needs no recorded state.
func (m *Manager) Delete(ctx context.Context, name string) error {
	if err := m.checkName(name); err != nil {
		return err
	}
	unlock := m.lock(name)
	defer unlock()
	hs, err := m.cgroupCandidates()
	if err := errors.Join(err, m.remove(ctx, name, hs)); err != nil {
		return fmt.Errorf("delete instance %s: %w", name, err)
	}
	return nil
}

// remove deletes an instance, looking for its cgroups in hs.
func (m *Manager) remove(ctx context.Context, name string, hs []cgroup.Hierarchy) error {
	return m.removeSwept(ctx, name, hs, true)
}

// removeSwept is remove; without sweep it relies on a sweep done by the
// caller (Cleanup sweeps once for all instances).
func (m *Manager) removeSwept(ctx context.Context, name string, hs []cgroup.Hierarchy, sweep bool) error {
	var errs []error
	if sweep {
		errs = append(errs, m.killAll(ctx, name, true))
	}
	for _, h := range hs {
		errs = append(errs, h.Remove(ctx, m.group(name)))
	}
	for _, p := range []string{m.nsFile(name, "mnt"), m.nsFile(name, "uts"), m.pidNsFile(name), m.ipcNsFile(name)} {
		errs = append(errs, unmountAndRemove(p))
	}
	if err := os.RemoveAll(m.runDir(name)); err != nil { // the legacy /etc files too
		errs = append(errs, err)
	}
	if err := os.RemoveAll(filepath.Join(m.etcRoot(), name)); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, deleteNetns(name), os.RemoveAll(m.instDir(name)), os.RemoveAll(m.netnsEtcDir(name)), m.releaseUID(name))
	m.forget(name)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	m.log().Debug("deleted instance", "instance", name)
	return nil
}

// Cleanup removes everything with the Manager's prefix: every instance found
// by List (processes, cgroups in every mounted hierarchy, namespace bind
// mounts, network namespaces, state directories), then the prefix's cgroup
// group, and the shared RuntimeDir/instances and RuntimeDir/etc tmpfs, RuntimeDir/bin and empty state
// directories once no instance of any prefix is left. It is idempotent and
// works with the state directory lost. Do not run it concurrently with
// Create on the same RuntimeDir.
func (m *Manager) Cleanup(ctx context.Context) error {
	names, err := m.List(ctx)
	errs := []error{err}
	hs, err := m.cgroupCandidates()
	errs = append(errs, err)
	var mu sync.Mutex
	addErr := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	// Kill first, everywhere (cgroups in every hierarchy, then one sweep of
	// /proc for all the instances' namespaces), then take things apart.
	ids := map[nsID]bool{}
	var kinds []string
	for _, name := range names {
		var ii map[nsID]bool
		ii, kinds = m.nsIDs(name, true)
		maps.Copy(ids, ii)
	}
	forEach(names, func(name string) {
		for _, h := range hs {
			if err := h.Kill(ctx, m.group(name)); err != nil {
				addErr(fmt.Errorf("clean up instance %s: %w", name, err))
			}
		}
	})
	errs = append(errs, m.sweep(ctx, ids, kinds))
	forEach(names, func(name string) {
		if ctx.Err() != nil {
			return
		}
		unlock := m.lock(name)
		defer unlock()
		if err := m.removeSwept(ctx, name, hs, false); err != nil {
			addErr(fmt.Errorf("clean up instance %s: %w", name, err))
		}
	})
	errs = append(errs, ctx.Err())
	for _, h := range hs {
		_, err := h.RemoveIfEmpty(m.group(""))
		errs = append(errs, err)
	}
	errs = append(errs, m.releasePrefixUIDs(), m.removeNetnsEtc(), m.removeSharedDirs())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean up prefix %q: %w", m.prefix(), err)
	}
	return nil
}

// removeNetnsEtc removes the /etc/netns directories of the prefix's
// instances that are left without a namespace (a crash between the two).
func (m *Manager) removeNetnsEtc() error {
	ents, err := os.ReadDir(m.netnsEtcRoot())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), m.prefix()) && m.checkName(e.Name()) == nil {
			errs = append(errs, os.RemoveAll(filepath.Join(m.netnsEtcRoot(), e.Name())))
		}
	}
	_ = os.Remove(m.netnsEtcRoot()) // only when empty: /etc/netns of other tools stays
	return errors.Join(errs...)
}

// forEach runs fn for every name, cleanupWorkers at a time.
func forEach(names []string, fn func(name string)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, cleanupWorkers)
	for _, name := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			fn(name)
		})
	}
	wg.Wait()
}

// removeSharedDirs removes RuntimeDir/instances and RuntimeDir/etc
// (unmounting them), RuntimeDir/bin and empty state directories when no
// instance of any prefix remains.
func (m *Manager) removeSharedDirs() error {
	m.dropTemplate() // it holds copies of what goes now
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	rt := m.runtimeDir()
	if _, err := os.Stat(rt); err == nil {
		errs = append(errs, nsnet.WithFlock(rt, func() error {
			roots := []string{m.runRoot(), m.etcRoot()}
			var found []string
			for _, root := range roots {
				ents, err := os.ReadDir(root)
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				if err != nil || len(ents) > 0 {
					return err
				}
				found = append(found, root)
			}
			if len(found) == 0 {
				return nil
			}
			for _, root := range found {
				if err := unmountAndRemove(root); err != nil {
					return err
				}
			}
			m.nsDirs = nil
			m.exeMu.Lock()
			defer m.exeMu.Unlock()
			m.exe = ""
			return os.RemoveAll(filepath.Join(rt, "bin"))
		}))
		_ = os.Remove(rt) // only when empty
	}
	errs = append(errs, m.removeHomes())
	_ = os.Remove(m.stateDir())
	return errors.Join(errs...)
}

// Processes returns the pids of the processes in the instance's cgroup.
func (m *Manager) Processes(name string) ([]int, error) {
	if err := m.checkName(name); err != nil {
		return nil, err
	}
	h, err := m.hierarchy()
	if err != nil {
		return nil, err
	}
	pids, err := h.Procs(m.group(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("processes of instance %s: %w", name, ErrNotFound)
	}
	return pids, err
}

// Exe returns the path of a copy of the running executable that is visible
// inside instances, RuntimeDir/bin/vmss (the executable itself may live
// under /tmp, e.g. with `go run`, and /tmp is private in an instance). The
// copy is made on the first call.
func (m *Manager) Exe() (string, error) {
	if err := m.checkConfig(); err != nil {
		return "", err
	}
	m.exeMu.Lock()
	defer m.exeMu.Unlock()
	if m.exe != "" && fileExists(m.exe) {
		return m.exe, nil
	}
	src, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("copy executable: %w", err)
	}
	dir := filepath.Join(m.runtimeDir(), "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("copy executable: %w", err)
	}
	dst := filepath.Join(dir, "vmss")
	tmp := fmt.Sprintf("%s.tmp-%d", dst, os.Getpid())
	if err := copyFile(src, tmp, 0o755); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("copy executable %s to %s: %w", src, dir, err)
	}
	if err := os.Rename(tmp, dst); err != nil { // running copies keep their inode
		_ = os.Remove(tmp)
		return "", fmt.Errorf("copy executable %s to %s: %w", src, dir, err)
	}
	m.exe = dst
	return dst, nil
}
