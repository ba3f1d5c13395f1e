package instance

import (
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// tmpfsMounts are the instance's RAM-backed directories.
func (m *Manager) tmpfsMounts() []tmpfsMount {
	return []tmpfsMount{{"/tmp", orDefault(m.TmpSize, DefaultTmpSize)}, {"/dev/shm", orDefault(m.ShmSize, DefaultShmSize)}}
}

func mountTmpfs(t tmpfsMount) error {
	opts := "mode=1777"
	if t.size > 0 {
		opts += ",size=" + strconv.FormatInt(t.size, 10)
	}
	if err := unix.Mount("tmpfs", t.dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", t.dir, err)
	}
	return nil
}

// resetTmpfs replaces the instance's /tmp and /dev/shm with empty ones, as
// powering a VM off empties its RAM (its disks, /home and /root, stay). It
// runs on a disposable thread that joins the instance's mount namespace.
// The caller has killed every process of the instance.
func (m *Manager) resetTmpfs(name string) error {
	mnt := m.nsFile(name, "mnt")
	if !isNsfs(mnt) {
		return nil
	}
	errc := make(chan error, 1)
	go onDisposableThread(func() {
		errc <- func() error {
			// setns into a mount namespace needs a file system context
			// (root, working directory) of the thread's own.
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				return fmt.Errorf("unshare the file system context: %w", err)
			}
			if err := setnsPath(mnt, unix.CLONE_NEWNS); err != nil {
				return err
			}
			for _, t := range m.tmpfsMounts() {
				if err := unix.Unmount(t.dir, unix.MNT_DETACH); err != nil {
					return fmt.Errorf("unmount %s: %w", t.dir, err)
				}
				if err := mountTmpfs(t); err != nil {
					return err
				}
			}
			return nil
		}()
	})
	if err := <-errc; err != nil {
		return fmt.Errorf("empty /tmp and /dev/shm of instance %s: %w", name, err)
	}
	return nil
}
