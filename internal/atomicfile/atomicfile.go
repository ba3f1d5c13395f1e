// Package atomicfile writes files so that a crash or a power loss at any
// moment leaves either the old file or the whole new one: the data goes to
// a temporary file in the same directory, which is fsynced, then renamed (or
// linked) into place, and the directory is fsynced so the new name itself
// is durable. Every file the emulator keeps across reboots (the desired
// state, instance specs, host keys) is written through it; Replace is the
// atomic write without the waits for the disk, for files that only need to
// survive a restart of the daemon (instance records).
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// syncFile is (*os.File).Sync; tests replace it to see what is synced.
var syncFile = (*os.File).Sync

// Write replaces path with data, with permissions mode.
func Write(path string, data []byte, mode os.FileMode) error {
	if err := write(path, data, mode, os.Rename); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriteNew writes data to path, which must not exist; it fails with an
// error matching fs.ErrExist (and changes nothing) when it does. Readers
// see the whole file or none.
func WriteNew(path string, data []byte, mode os.FileMode) error {
	err := write(path, data, mode, os.Link)
	if errors.Is(err, fs.ErrExist) {
		return err
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Replace replaces path with data, with permissions mode, atomically but
// not durably: readers see the old file or the whole new one, and so does
// a restarted process, but after a power loss or a kernel crash path may
// hold either, or be empty. It does not wait for the disk: for files that
// describe what does not outlive the kernel either, or are written again.
func Replace(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	err = errors.Join(err, f.Chmod(mode), f.Close())
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func write(path string, data []byte, mode os.FileMode, place func(tmp, path string) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a link, or a failure; a renamed file is gone already
	_, err = f.Write(data)
	err = errors.Join(err, f.Chmod(mode))
	if err == nil {
		err = syncFile(f)
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return err
	}
	if err := place(tmp, path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory, making the names created, renamed or removed
// in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := syncFile(d); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
