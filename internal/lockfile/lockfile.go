// Package lockfile takes exclusive, non-blocking locks (flock) on files, as
// a daemon does to keep a second copy of itself away. The holder's pid is
// written in the file for error messages. A lock is released by closing it
// or by the holder's death (the kernel drops the flock); the file stays.
//
// A lock file is only ever removed by someone holding its lock
// (RemoveIfFree), and TryLock checks, once locked, that the file it locked
// is still the one at the path, so removing a lock file never lets two
// holders in.
package lockfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrHeld is returned (wrapped) when another open file holds the lock.
var ErrHeld = errors.New("lock held")

// Lock is a held lock.
type Lock struct {
	f    *os.File
	path string
}

// Path returns the lock file's path.
func (l *Lock) Path() string { return l.path }

// TryLock creates path (and its directory) if needed and locks it without
// waiting. When another process (or another open file of this one) holds
// it, the error wraps ErrHeld and names the holder's pid when known.
func TryLock(path string) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for range 16 {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				if pid := Holder(path); pid > 0 {
					return nil, fmt.Errorf("lock %s: %w by pid %d", path, ErrHeld, pid)
				}
				return nil, fmt.Errorf("lock %s: %w", path, ErrHeld)
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !samePath(f, path) { // removed (by its holder) after we opened it
			f.Close()
			continue
		}
		if err := f.Truncate(0); err == nil {
			_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		}
		return &Lock{f: f, path: path}, nil
	}
	return nil, fmt.Errorf("lock %s: the file keeps being replaced", path)
}

func samePath(f *os.File, path string) bool {
	var a, b unix.Stat_t
	return unix.Fstat(int(f.Fd()), &a) == nil && unix.Stat(path, &b) == nil && a.Dev == b.Dev && a.Ino == b.Ino
}

// Close releases the lock; the file stays.
func (l *Lock) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Remove removes the lock file while still holding it, then releases it.
func (l *Lock) Remove() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := os.Remove(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return errors.Join(err, l.Close())
}

// RemoveIfFree removes the lock file at path unless someone holds it. It
// reports whether the file is gone (true also when it did not exist).
func RemoveIfFree(path string) (bool, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	l, err := TryLock(path)
	if errors.Is(err, ErrHeld) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, l.Remove()
}

// Holder returns the pid written in the lock file at path, or 0.
func Holder(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}
