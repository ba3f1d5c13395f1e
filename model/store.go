package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
)

// StateFile is the file name of the persisted state inside the state directory.
const StateFile = "state.json"

// Store guards a State and persists it after every change. Writes are atomic:
// the new state goes to a temporary file that is fsynced and renamed over the
// old one, and the directory is fsynced, so a crash leaves one whole version.
type Store struct {
	dir      string
	mu       sync.RWMutex
	st       *State
	saved    []byte
	lock     *os.File
	onChange func()
}

// Open loads the state in dir (creating dir and an empty state when there is
// none) and takes an exclusive lock so two daemons cannot share a state.
func Open(dir string, cfg Config) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory %s: %w", dir, err)
	}
	lf, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file in %s: %w", dir, err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lf.Close()
		return nil, fmt.Errorf("state directory %s is in use by another vmss daemon (lock held): stop it first, or use another --state-dir: %w", dir, err)
	}
	st := New(cfg)
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	switch {
	case err == nil:
		var loaded State
		if err := json.Unmarshal(data, &loaded); err != nil {
			lf.Close()
			return nil, fmt.Errorf("state file %s is not valid JSON (%v): move it away to start empty, or restore a backup", filepath.Join(dir, StateFile), err)
		}
		loaded.SetConfig(cfg)
		st = &loaded
	case errors.Is(err, os.ErrNotExist):
	default:
		lf.Close()
		return nil, fmt.Errorf("read state file: %w", err)
	}
	saved, _ := json.Marshal(st)
	return &Store{dir: dir, st: st, saved: saved, lock: lf}, nil
}

// OnChange registers a function called (without locks held) after every
// successful change.
func (s *Store) OnChange(f func()) {
	s.mu.Lock()
	s.onChange = f
	s.mu.Unlock()
}

// Close releases the state directory lock.
func (s *Store) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// View runs f with the state locked for reading. f must not keep references
// past its return, nor change anything.
func (s *Store) View(f func(*State)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	f(s.st)
}

// Update runs f with the state locked for writing. When f returns an error,
// f must not have changed anything (the model's operations validate before
// they change). When f changed the state (its Seq moved), the new state is
// persisted before Update returns; if that fails, the change is undone and the
// error returned.
//
// A panic in f is an error too: the state goes back to the last saved
// version, and the lock is released, so one bad request cannot wedge every
// later one.
func (s *Store) Update(f func(*State) error) error {
	s.mu.Lock()
	before := s.st.Seq
	err := s.run(f)
	if err != nil || s.st.Seq == before {
		s.mu.Unlock()
		return err
	}
	data, merr := json.Marshal(s.st)
	if merr == nil {
		merr = writeAtomic(filepath.Join(s.dir, StateFile), data)
	}
	if merr != nil {
		s.restore()
		s.mu.Unlock()
		return fmt.Errorf("persist state to %s (change undone): %w", s.dir, merr)
	}
	s.saved = data
	cb := s.onChange
	s.mu.Unlock()
	if cb != nil {
		cb()
	}
	return nil
}

// PanicError is the error of an Update whose function panicked (a bug):
// the change was undone.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("internal error while changing the state (change undone): %v", e.Value)
}

// run calls f, turning a panic into an error after restoring the saved
// state. s.mu is held.
func (s *Store) run(f func(*State) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.restore()
			err = &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	return f(s.st)
}

// restore puts back the last saved state. s.mu is held.
func (s *Store) restore() {
	var prev State
	if json.Unmarshal(s.saved, &prev) == nil {
		prev.SetConfig(s.st.cfg)
		s.st = &prev
	}
}

func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".state-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
