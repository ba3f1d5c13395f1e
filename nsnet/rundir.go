package nsnet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/vmss-emulator/vmss/internal/mountinfo"
)

// EnsureRunDir makes RunDir a shared mount point of itself, as `ip netns
// add` does, so that deleting a namespace also unmounts its copies in mount
// namespaces that receive propagation from the host (`ip netns exec`
// sessions, instances' mount namespaces).
//
// It must run before the first namespace is bind-mounted in RunDir: on a
// freshly booted host RunDir is a plain directory, and a namespace mounted
// there first would be covered (hidden, yet still mounted) when RunDir
// becomes a mount point later. Create calls it; so does anything else that
// mounts in RunDir. It is idempotent and serialized with other processes by
// a lock on RunDir's parent directory.
func EnsureRunDir() error {
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", RunDir, err)
	}
	real, err := filepath.EvalSymlinks(RunDir)
	if err != nil {
		return err
	}
	return WithFlock(filepath.Dir(real), func() error {
		ms, err := mountinfo.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return err
		}
		var top *mountinfo.Mount
		for i := range ms {
			if ms[i].MountPoint == real {
				top = &ms[i]
			}
		}
		if top != nil && top.Shared() {
			return nil
		}
		if top == nil {
			if err := unix.Mount(real, real, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
				return fmt.Errorf("make %s a mount point: %w", real, err)
			}
		}
		if err := unix.Mount("", real, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("make %s a shared mount: %w", real, err)
		}
		return nil
	})
}

// WithFlock runs fn holding an exclusive flock on dir, which serializes
// goroutines and processes that manage the same directory.
func WithFlock(dir string, fn func() error) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("lock %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", dir, err)
	}
	return fn()
}

// UnmountAndRemove unmounts every mount on path and removes the file; a
// missing path is fine. Besides mounts stacked on path it removes covered
// ones: a mount made on path while its directory was not yet a mount point
// stays mounted, hidden, after the directory becomes one (the old order of
// `ip netns add` on a fresh host), and keeps the file busy (EBUSY). Such a
// mount is reached through its parent mount (by file handle, without
// touching the mount that covers it) and unmounted too.
func UnmountAndRemove(path string) error {
	path = filepath.Clean(path)
	if err := unmountStacked(path); err != nil {
		return err
	}
	err := os.Remove(path)
	if err == nil || errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if !errors.Is(err, unix.EBUSY) {
		return err
	}
	if cerr := unmountCovered(path); cerr != nil {
		return errors.Join(err, cerr)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w (mounts on it: %s)", err, describeMounts(path))
	}
	return nil
}

// unmountStacked detaches the mounts reachable at path, top first.
func unmountStacked(path string) error {
	for range 64 {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil // not (or no longer) a mount point
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", path, err)
		}
	}
	return fmt.Errorf("unmount %s: still a mount point after 64 unmounts", path)
}

// unmountCovered unmounts the mounts on path that mountinfo lists but that
// are hidden under a mount on one of path's directories.
func unmountCovered(path string) error {
	ms, err := mountinfo.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	byID := map[int]mountinfo.Mount{}
	for _, m := range ms {
		byID[m.ID] = m
	}
	dir, base := filepath.Split(path)
	dir = filepath.Clean(dir)
	var errs []error
	found := false
	for _, m := range ms {
		if m.MountPoint != path {
			continue
		}
		parent, ok := byID[m.ParentID]
		if !ok {
			continue
		}
		found = true
		errs = append(errs, unmountVia(parent, dir, base))
	}
	if !found {
		return nil
	}
	return errors.Join(errs...)
}

// unmountVia unmounts the mount at dir/base whose parent mount is parent,
// reaching dir inside parent by file handle: a path walk would enter
// whatever covers dir.
func unmountVia(parent mountinfo.Mount, dir, base string) error {
	pfd, err := unix.Open(parent.MountPoint, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open parent mount %s: %w", parent.MountPoint, err)
	}
	defer unix.Close(pfd)
	if id, err := mountID(pfd); err != nil || id != uint64(parent.ID) {
		return fmt.Errorf("open parent mount %s: it is covered too (mount %d, want %d; %v)", parent.MountPoint, id, parent.ID, err)
	}
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, dir, 0)
	if err != nil {
		return fmt.Errorf("file handle of %s: %w", dir, err)
	}
	dfd, err := unix.OpenByHandleAt(pfd, h, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open %s inside mount %s: %w", dir, parent.MountPoint, err)
	}
	defer unix.Close(dfd)
	if id, err := mountID(dfd); err != nil || id != uint64(parent.ID) {
		return fmt.Errorf("open %s inside mount %s: landed on mount %d (%v)", dir, parent.MountPoint, id, err)
	}
	target := "/proc/self/fd/" + strconv.Itoa(dfd) + "/" + base
	if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmount covered mount %s/%s: %w", dir, base, err)
	}
	return nil
}

func mountID(fd int) (uint64, error) {
	var sx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &sx); err != nil {
		return 0, err
	}
	return sx.Mnt_id, nil
}

// describeMounts lists the mountinfo entries on path, for error messages.
func describeMounts(path string) string {
	ms, err := mountinfo.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err.Error()
	}
	s := ""
	for _, m := range ms {
		if m.MountPoint == path {
			s += fmt.Sprintf("[mount %d on %d, %s] ", m.ID, m.ParentID, m.FSType)
		}
	}
	if s == "" {
		return "none"
	}
	return s
}
