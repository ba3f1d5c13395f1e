package instance

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// claimUID returns the admin uid of instance name: the one it already
// claimed, else want (when not zero and free), else the lowest free uid of
// the range. The claim survives daemon restarts (the directory is on /run);
// after a reboot Create claims the recorded uid again.
func (m *Manager) claimUID(name string, want int) (int, error) {
	dir := m.uidDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("allocate admin uid of %s: %w", name, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("allocate admin uid of %s: %w", name, err)
	}
	taken := map[int]bool{}
	for _, e := range ents {
		uid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		owner, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if owner == name && (want == 0 || want == uid) {
			return uid, nil
		}
		taken[uid] = true
	}
	try := func(uid int) (bool, error) {
		err := os.Symlink(name, filepath.Join(dir, strconv.Itoa(uid)))
		if errors.Is(err, fs.ErrNotExist) { // another Manager removed the empty directory
			if err = os.MkdirAll(dir, 0o700); err == nil {
				err = os.Symlink(name, filepath.Join(dir, strconv.Itoa(uid)))
			}
		}
		if err == nil {
			return true, nil
		}
		if errors.Is(err, fs.ErrExist) {
			owner, _ := os.Readlink(filepath.Join(dir, strconv.Itoa(uid)))
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
	for uid := AdminUIDBase; uid < AdminUIDBase+adminUIDCount; uid++ {
		if taken[uid] {
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
// reports true (one name, or every name with the prefix). Missing claims
// are fine.
func (m *Manager) releaseUIDs(match func(owner string) bool) error {
	dir := m.uidDir()
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release admin uids: %w", err)
	}
	var errs []error
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		owner, err := os.Readlink(p)
		if err != nil || !match(owner) {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	_ = os.Remove(dir) // only when empty
	return errors.Join(errs...)
}

// releaseUID removes the uid claim of instance name. With its uid known
// (recorded in its spec) that is the one claim named by the uid; otherwise,
// or when that claim is not name's, every claim is read (O(claims of the
// host), which a delete of many instances must not pay per instance).
func (m *Manager) releaseUID(name string, uid int) error {
	if uid >= AdminUIDBase && uid < AdminUIDBase+adminUIDCount {
		p := filepath.Join(m.uidDir(), strconv.Itoa(uid))
		if owner, err := os.Readlink(p); err == nil && owner == name {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("release admin uid %d of %s: %w", uid, name, err)
			}
			_ = os.Remove(m.uidDir()) // only when empty
			return nil
		}
	}
	return m.releaseUIDs(func(owner string) bool { return owner == name })
}

func (m *Manager) releasePrefixUIDs() error {
	p := m.prefix()
	return m.releaseUIDs(func(owner string) bool { return strings.HasPrefix(owner, p) && owner != p })
}
