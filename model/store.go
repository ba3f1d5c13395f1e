package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"

	"github.com/vmss-emulator/vmss/internal/atomicfile"
	"github.com/vmss-emulator/vmss/internal/lockfile"
)

// StateFile is the file name of the persisted state inside the state directory.
const StateFile = "state.json"

// LockFile, in the state directory, is locked by the daemon that uses it.
const LockFile = "lock"

// Store guards a State and persists it after every change. Writes are atomic:
// the new state goes to a temporary file that is fsynced and renamed over the
// old one, and the directory is fsynced, so a crash leaves one whole version.
type Store struct {
	dir      string
	mu       sync.RWMutex
	st       *State
	saved    []byte
	lock     *lockfile.Lock
	onChange []func()
	seal     *sealer // seals protected settings in the state file
}

// Open loads the state in dir (creating dir and an empty state when there is
// none) and takes an exclusive lock so two daemons cannot share a state.
func Open(dir string, cfg Config) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory %s: %w", dir, err)
	}
	lf, err := lockfile.TryLock(filepath.Join(dir, LockFile))
	if errors.Is(err, lockfile.ErrHeld) {
		return nil, fmt.Errorf("state directory %s is in use by another vmss daemon: stop it first, or use another --state-dir: %w", dir, err)
	}
	if err != nil {
		return nil, err
	}
	st := New(cfg)
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err == nil {
		data, err = unsealState(dir, data)
		if err != nil {
			lf.Close()
			return nil, fmt.Errorf("state file %s: %w", filepath.Join(dir, StateFile), err)
		}
	}
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
	seal, err := loadSealer(dir, true)
	if err != nil {
		lf.Close()
		return nil, err
	}
	saved, _ := json.Marshal(st) // encoding our own types (no channels, funcs or cyclic values) cannot fail
	return &Store{dir: dir, st: st, saved: saved, lock: lf, seal: seal}, nil
}

// OnChange registers a function called (without locks held) after every
// successful change, after those registered before it (the reconciler and
// the dashboard both listen).
func (s *Store) OnChange(f func()) {
	s.mu.Lock()
	s.onChange = append(s.onChange, f)
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
		var sealed []byte
		if sealed, merr = s.seal.seal(data); merr == nil {
			merr = writeAtomic(filepath.Join(s.dir, StateFile), sealed)
		}
	}
	if merr != nil {
		s.restore()
		s.mu.Unlock()
		return fmt.Errorf("persist state to %s (change undone): %w", s.dir, merr)
	}
	s.saved = data
	cbs := s.onChange
	s.mu.Unlock()
	for _, cb := range cbs {
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
	return atomicfile.Write(path, data, 0o600)
}
