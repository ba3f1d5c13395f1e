package instance

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/vmss-emulator/vmss/internal/atomicfile"
	"github.com/vmss-emulator/vmss/internal/mountinfo"
	"github.com/vmss-emulator/vmss/nsnet"
)

// The instances' files (StateDir/instances: each one's /home and /root, and
// its recorded spec) live on a filesystem of their own, an ext4 image
// (StateDir/instances.img, sparse) mounted on StateDir/instances, so that
// an instance that fills its /home fills that filesystem only: the state
// directory's own filesystem (state.json, host keys, logs), and with it
// every API call, keeps working.
//
// One filesystem for all the instances of a state directory rather than
// one per instance: a loop device, a mount and a journal thread per instance
// would not scale to thousands of instances, and the instances' uids are
// distinct, so per-instance quotas could be added on this one filesystem.
//
// DefaultHomesSize caps that filesystem; the image is sparse (it takes what
// is used), and at most a quarter of the free space of the state
// directory's filesystem when the image is made, so filling it always
// leaves room there.
const DefaultHomesSize = 8 << 30

const homesImage = "instances.img"

// minHomesSize is the smallest image worth making (ext4 with a journal).
const minHomesSize = 64 << 20

func (m *Manager) homesDir() string { return filepath.Join(m.stateDir(), "instances") }
func (m *Manager) homesImg() string { return filepath.Join(m.stateDir(), homesImage) }

// ensureHomes makes StateDir/instances the mount point of the instances'
// filesystem, once per Manager: it mounts an existing image (after a
// reboot), or makes one when the directory is new or empty. A directory
// that already holds instances (made without the image) is left as it is,
// with a warning.
func (m *Manager) ensureHomes() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.homesReady || m.HomesSize < 0 {
		return nil
	}
	dir, img := m.homesDir(), m.homesImg()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	own := true
	err := nsnet.WithFlock(m.stateDir(), func() error {
		if isMountPoint(dir) {
			return nil
		}
		if _, err := os.Stat(img); errors.Is(err, fs.ErrNotExist) {
			ents, err := os.ReadDir(dir)
			if err != nil {
				return err
			}
			if len(ents) > 0 {
				m.log().Warn("instance files are on the state directory's filesystem (made by an older version): "+
					"an instance can fill it; delete the instances to move them to a size-capped filesystem",
					"dir", dir)
				return errSkipHomes
			}
			if err := makeHomesImage(img, m.homesSize()); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		out, err := exec.Command("mount", "-t", "ext4", "-o", "loop,nosuid,nodev", img, dir).CombinedOutput()
		if err != nil {
			return fmt.Errorf("mount %s on %s: %w: %s", img, dir, err, strings.TrimSpace(string(out)))
		}
		// The root of a new ext4 is 0755; lost+found stays root's.
		return os.Chmod(dir, 0o700)
	})
	if errors.Is(err, errSkipHomes) {
		err, own = nil, false
	}
	if err != nil {
		return fmt.Errorf("instances' filesystem %s: %w", img, err)
	}
	m.homesReady, m.homesOwn = true, own
	return nil
}

// writeSpecFile writes an instance's spec durably: on the instances' own
// filesystem with one commit of it shared by the instances created at the
// same time (see groupSync), elsewhere (no such filesystem) as
// atomicfile.Write does, so as not to commit the whole filesystem of the
// state directory.
func (m *Manager) writeSpecFile(path string, data []byte) error {
	m.mu.Lock()
	own := m.homesReady && m.homesOwn
	m.mu.Unlock()
	if !own {
		return writeFileAtomic(path, data, 0o600)
	}
	if err := atomicfile.Replace(path, data, 0o600); err != nil {
		return err
	}
	if err := m.homesSync.Sync(m.homesDir()); err != nil {
		return fmt.Errorf("write %s: commit the instances' filesystem: %w", path, err)
	}
	return nil
}

var errSkipHomes = errors.New("skip")

// homesSize is HomesSize (or DefaultHomesSize), at most a quarter of the
// free space of the state directory's filesystem.
func (m *Manager) homesSize() int64 {
	size := orDefault(m.HomesSize, DefaultHomesSize)
	var st unix.Statfs_t
	if unix.Statfs(m.stateDir(), &st) == nil {
		if q := int64(st.Bavail) * st.Bsize / 4; q < size {
			size = q
		}
	}
	return max(size, minHomesSize)
}

// makeHomesImage makes a sparse ext4 image of size bytes at img.
func makeHomesImage(img string, size int64) error {
	tmp := img + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		var out []byte
		out, err = exec.Command("mkfs.ext4", "-q", "-F", "-m", "0", "-L", "vmss-instances",
			"-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", tmp).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("mkfs.ext4 %s: %w: %s (install e2fsprogs, or set a negative HomesSize)", tmp, err, strings.TrimSpace(string(out)))
		}
	}
	if err == nil {
		err = os.Rename(tmp, img)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// removeHomes unmounts the instances' filesystem and removes its image when
// it holds no instance (only lost+found).
func (m *Manager) removeHomes() error {
	dir := m.homesDir()
	if isMountPoint(dir) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if e.Name() != "lost+found" {
				return nil
			}
		}
		// Detached: a copy in a mount namespace that is going away keeps
		// the loop device until then (it is released automatically).
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount the instances' filesystem %s: %w", dir, err)
		}
	} else if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return nil
	}
	_ = os.Remove(dir)
	if err := os.Remove(m.homesImg()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	m.homesReady = false
	return nil
}

// isMountPoint reports whether dir is a mount point in this mount namespace.
func isMountPoint(dir string) bool {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	ms, err := mountinfo.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, mt := range ms {
		if mt.MountPoint == real {
			return true
		}
	}
	return false
}
