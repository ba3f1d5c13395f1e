package instance

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Admin uids of instances created without Spec.AdminUID come from
// [AdminUIDBase, AdminUIDBase+adminUIDCount). The range lies in what
// systemd documents as unused (above the container range, below 2^31), away
// from regular users (1000-60000), dynamic users and the subordinate ranges
// of rootless containers (100000 and up, 65536 per user), so an instance's
// admin can act on nothing but its own instance.
const (
	AdminUIDBase  = 1_900_000_000
	adminUIDCount = 1 << 20
)

// defaultUIDDir holds one claim per allocated admin uid: a symbolic link
// named by the uid whose target is the instance's name. It is shared by all
// Managers of the host (instance names are unique host-wide, as network
// namespace names are), so two daemons never hand out the same uid.
const defaultUIDDir = "/run/vmss-uids"

func (m *Manager) uidDir() string { return cmpOr(m.UIDDir, defaultUIDDir) }

// uidClaims is what a Manager knows of the claims directory: every claim
// (uid → owner) as of its last scan, plus its own changes since. Claiming
// and releasing look here instead of reading every claim, which made
// creating n instances cost n². The directory is shared with other
// Managers, so the index can be stale: a claim is still made with an
// exclusive symlink (a uid taken meanwhile is skipped), an owner found here
// is checked with one readlink, and the directory is scanned again when
// its inode or modification time shows a change the Manager did not make
// (e.g. it was emptied by a reboot or a cleanup).
type uidClaims struct {
	mu     sync.Mutex
	loaded bool
	ino    uint64
	mtime  unix.Timespec
	owner  map[int]string // uid → instance
	byName map[string]int // instance → uid
	free   int            // no uid of the range below it is free (0: AdminUIDBase)
}

// sync rescans the directory when it changed behind the index's back; mu is held.
func (c *uidClaims) sync(dir string) error {
	var st unix.Stat_t
	err := unix.Stat(dir, &st)
	if err == nil && c.loaded && st.Ino == c.ino && st.Mtim == c.mtime {
		return nil
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	c.owner, c.byName, c.loaded, c.free = map[int]string{}, map[string]int{}, false, AdminUIDBase
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		uid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		owner, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		c.add(uid, owner)
	}
	c.noteOwnChange(dir)
	return nil
}

// noteOwnChange records the directory's state after a change the index
// knows of; mu is held.
func (c *uidClaims) noteOwnChange(dir string) {
	var st unix.Stat_t
	if unix.Stat(dir, &st) != nil {
		c.loaded = false
		return
	}
	c.ino, c.mtime, c.loaded = st.Ino, st.Mtim, true
}

func (c *uidClaims) add(uid int, owner string) {
	if old, ok := c.owner[uid]; ok && c.byName[old] == uid {
		delete(c.byName, old)
	}
	c.owner[uid] = owner
	if _, ok := c.byName[owner]; !ok || uid < c.byName[owner] {
		c.byName[owner] = uid
	}
}

func (c *uidClaims) drop(uid int) {
	c.free = min(c.free, uid)
	if owner, ok := c.owner[uid]; ok {
		delete(c.owner, uid)
		if c.byName[owner] == uid {
			delete(c.byName, owner)
			for u, o := range c.owner { // another claim of the same owner (rare)
				if o == owner {
					c.add(u, o)
				}
			}
		}
	}
}

// claimUID returns the admin uid of instance name: the one it already
// claimed, else want (when not zero and free), else the lowest free uid of
// the range. The claim survives daemon restarts (the directory is on /run);
// after a reboot Create claims the recorded uid again.
func (m *Manager) claimUID(name string, want int) (int, error) {
	dir := m.uidDir()
	c := &m.uids
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("allocate admin uid of %s: %w", name, err)
	}
	if err := c.sync(dir); err != nil {
		return 0, fmt.Errorf("allocate admin uid of %s: %w", name, err)
	}
	if uid, ok := c.byName[name]; ok && (want == 0 || want == uid) {
		if owner, err := os.Readlink(filepath.Join(dir, strconv.Itoa(uid))); err == nil && owner == name {
			return uid, nil
		}
		c.loaded = false // stale: read everything again
		if err := c.sync(dir); err != nil {
			return 0, fmt.Errorf("allocate admin uid of %s: %w", name, err)
		}
		if uid, ok := c.byName[name]; ok && (want == 0 || want == uid) {
			return uid, nil
		}
	}
	defer c.noteOwnChange(dir)
	try := func(uid int) (bool, error) {
		err := os.Symlink(name, filepath.Join(dir, strconv.Itoa(uid)))
		if errors.Is(err, fs.ErrNotExist) { // another Manager removed the empty directory
			if err = os.MkdirAll(dir, 0o700); err == nil {
				err = os.Symlink(name, filepath.Join(dir, strconv.Itoa(uid)))
			}
		}
		if err == nil {
			c.add(uid, name)
			return true, nil
		}
		if errors.Is(err, fs.ErrExist) {
			owner, _ := os.Readlink(filepath.Join(dir, strconv.Itoa(uid)))
			c.add(uid, owner)
			return owner == name, nil
		}
		return false, fmt.Errorf("allocate admin uid of %s: %w", name, err)
	}
	if want != 0 {
		ok, err := try(want)
		if err != nil || ok {
			return want, err
		}
		owner, _ := os.Readlink(filepath.Join(dir, strconv.Itoa(want)))
		return 0, fmt.Errorf("admin uid %d of instance %s is taken by instance %s (see %s): delete one of them",
			want, name, owner, dir)
	}
	for uid := max(c.free, AdminUIDBase); uid < AdminUIDBase+adminUIDCount; uid++ {
		if _, taken := c.owner[uid]; taken {
			if uid == c.free {
				c.free++
			}
			continue
		}
		ok, err := try(uid)
		if err != nil {
			return 0, err
		}
		if ok {
			return uid, nil
		}
	}
	return 0, fmt.Errorf("allocate admin uid of %s: all %d uids from %d are taken (see %s)", name, adminUIDCount, AdminUIDBase, dir)
}

// releaseUIDs removes the uid claims of the instances for which match
// reports true (every name with the prefix), reading every claim. Missing
// claims are fine.
func (m *Manager) releaseUIDs(match func(owner string) bool) error {
	dir := m.uidDir()
	c := &m.uids
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loaded = false // read every claim: a cleanup needs no index
	if err := c.sync(dir); err != nil {
		return fmt.Errorf("release admin uids: %w", err)
	}
	var errs []error
	for uid, owner := range c.owner {
		if !match(owner) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, strconv.Itoa(uid))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		c.drop(uid)
	}
	_ = os.Remove(dir) // only when empty
	c.noteOwnChange(dir)
	return errors.Join(errs...)
}

// releaseUID removes the uid claims of instance name, found in the index.
func (m *Manager) releaseUID(name string) error {
	dir := m.uidDir()
	c := &m.uids
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.sync(dir); err != nil {
		return fmt.Errorf("release admin uid of %s: %w", name, err)
	}
	var errs []error
	for {
		uid, ok := c.byName[name]
		if !ok {
			break
		}
		p := filepath.Join(dir, strconv.Itoa(uid))
		if owner, err := os.Readlink(p); err == nil && owner == name {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("release admin uid of %s: %w", name, err))
				break
			}
		}
		c.drop(uid)
	}
	_ = os.Remove(dir) // only when empty
	c.noteOwnChange(dir)
	return errors.Join(errs...)
}

func (m *Manager) releasePrefixUIDs() error {
	p := m.prefix()
	return m.releaseUIDs(func(owner string) bool { return strings.HasPrefix(owner, p) && owner != p })
}
