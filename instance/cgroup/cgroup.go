package cgroup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Hierarchy is a mounted cgroup hierarchy. Group names passed to its methods
// are slash-separated paths relative to Dir, e.g. "vmss/vmss-web-0"; a group
// includes its sub-groups.
//
// The zero value is not usable; get one from Detect, At or All.
type Hierarchy struct {
	Dir     string  // directory under which groups are created
	Version Version // V1 or V2
	// Controller is the v1 controller used to stop forks during a kill:
	// "freezer", "pids", or "" (kill by repeated signals only). Empty on v2.
	Controller string

	// Seams for tests: a fake kernel in a temporary directory, and the
	// pre-5.14 behaviour on a newer kernel.
	write        func(path, value string) error // nil: write the control file
	signal       func(pid int) error            // nil: SIGKILL
	noCgroupKill bool                           // ignore cgroup.kill
}

// Path returns the directory of group.
func (h Hierarchy) Path(group string) string { return filepath.Join(h.Dir, group) }

// ProcsFile returns the cgroup.procs file of group: a process that writes its
// own pid there joins the group (root only).
func (h Hierarchy) ProcsFile(group string) string {
	return filepath.Join(h.Dir, group, "cgroup.procs")
}

// Create makes group (and missing parents). It is a no-op when it exists.
func (h Hierarchy) Create(group string) error {
	if err := os.MkdirAll(h.Path(group), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", h.Version, err)
	}
	return nil
}

// Exists reports whether group exists.
func (h Hierarchy) Exists(group string) bool {
	st, err := os.Stat(h.Path(group))
	return err == nil && st.IsDir()
}

// Children returns the names of the direct sub-groups of group, sorted; none
// when group does not exist.
func (h Hierarchy) Children(group string) ([]string, error) {
	ents, err := os.ReadDir(h.Path(group))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s groups: %w", h.Version, err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Procs returns the pids of the processes in group and its sub-groups,
// sorted. A missing group returns an error matching fs.ErrNotExist.
func (h Hierarchy) Procs(group string) ([]int, error) {
	dirs, err := h.tree(group)
	if err != nil {
		return nil, err
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("%s group %s: %w", h.Version, h.Path(group), fs.ErrNotExist)
	}
	return h.procs(dirs)
}

// Kill kills every process in group and its sub-groups and waits until they
// are gone (or ctx is done). The groups stay. A missing group is a no-op.
func (h Hierarchy) Kill(ctx context.Context, group string) error {
	dirs, err := h.tree(group)
	if err != nil || len(dirs) == 0 {
		return err
	}
	if err := h.kill(ctx, dirs); err != nil {
		return fmt.Errorf("kill processes of %s group %s: %w", h.Version, h.Path(group), err)
	}
	return nil
}

// Remove kills every process in group and its sub-groups, then removes the
// groups. A missing group is a no-op.
func (h Hierarchy) Remove(ctx context.Context, group string) error {
	dirs, err := h.tree(group)
	if err != nil || len(dirs) == 0 {
		return err
	}
	if err := h.kill(ctx, dirs); err != nil {
		return fmt.Errorf("remove %s group %s: %w", h.Version, h.Path(group), err)
	}
	for _, d := range slices.Backward(dirs) { // children first
		if err := h.rmdir(ctx, d); err != nil {
			return fmt.Errorf("remove %s group %s: %w", h.Version, d, err)
		}
	}
	return nil
}

// RemoveIfEmpty removes group when it has neither processes nor sub-groups;
// it reports whether group is gone.
func (h Hierarchy) RemoveIfEmpty(group string) (bool, error) {
	err := unix.Rmdir(h.Path(group))
	switch {
	case err == nil, errors.Is(err, unix.ENOENT):
		return true, nil
	case errors.Is(err, unix.EBUSY), errors.Is(err, unix.ENOTEMPTY):
		return false, nil
	}
	return false, fmt.Errorf("remove %s group %s: %w", h.Version, h.Path(group), err)
}

// rmdir removes one empty group, retrying while the kernel still counts
// exiting tasks in it.
func (h Hierarchy) rmdir(ctx context.Context, dir string) error {
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return err
		}
		if err := sleep(ctx, wait); err != nil {
			return fmt.Errorf("still busy: %w", err)
		}
	}
}

// tree returns group and all its sub-groups, parents first; nothing when
// group does not exist.
func (h Hierarchy) tree(group string) ([]string, error) {
	root := h.Path(group)
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != root && errors.Is(err, fs.ErrNotExist) { // removed while walking
				return nil
			}
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("walk %s group %s: %w", h.Version, root, err)
	}
	return dirs, nil
}

func (h Hierarchy) procs(dirs []string) ([]int, error) {
	var pids []int
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				return nil, fmt.Errorf("%s/cgroup.procs: bad pid %q", d, f)
			}
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return slices.Compact(pids), nil
}

// kill runs rounds of stop-forks, signal-all, resume until the groups are
// empty. The first directory is the top of the tree. Groups that are empty
// to begin with are left alone: nothing in them can fork, and freezing a
// v1 group (a write to freezer.state and another to thaw it) costs about a
// millisecond of kernel time, the bulk of deleting an instance without
// processes.
func (h Hierarchy) kill(ctx context.Context, dirs []string) error {
	if pids, err := h.procs(dirs); err != nil || len(pids) == 0 {
		return err
	}
	top := dirs[0]
	stop, resume := h.forkStopper(top)
	defer resume()
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		if err := stop(ctx); err != nil {
			return err
		}
		pids, err := h.procs(dirs)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			if err := h.sendKill(pid); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("kill pid %d: %w", pid, err)
			}
		}
		if err := resume(); err != nil {
			return err
		}
		if err := sleep(ctx, wait); err != nil {
			return fmt.Errorf("%d processes still alive (%v): %w", len(pids), pids, err)
		}
	}
}

// forkStopper returns how this hierarchy keeps a group from forking while it
// is being killed, and how to undo that. Both are idempotent.
func (h Hierarchy) forkStopper(top string) (stop func(context.Context) error, resume func() error) {
	nop := func() error { return nil }
	file := func(name string) string { return filepath.Join(top, name) }
	// freeze writes on to ctl and waits until state shows want; resume
	// writes off.
	freeze := func(ctl, on, off, state, want string) (func(context.Context) error, func() error) {
		return func(ctx context.Context) error {
				if err := h.writeFile(file(ctl), on); err != nil {
					return err
				}
				h.waitFor(ctx, file(state), want)
				return nil
			}, func() error {
				return h.writeFile(file(ctl), off)
			}
	}
	switch {
	case h.Version == V2 && !h.noCgroupKill && exists(file("cgroup.kill")):
		// The kernel kills every member, including processes forked during the kill.
		return func(context.Context) error { return h.writeFile(file("cgroup.kill"), "1") }, nop
	case h.Version == V2 && exists(file("cgroup.freeze")):
		return freeze("cgroup.freeze", "1", "0", "cgroup.events", "frozen 1")
	case h.Version == V1 && h.Controller == "freezer":
		return freeze("freezer.state", "FROZEN", "THAWED", "freezer.state", "FROZEN")
	case h.Version == V1 && h.Controller == "pids":
		old, err := os.ReadFile(file("pids.max"))
		if err != nil {
			break
		}
		restore := string(bytes.TrimSpace(old))
		return func(context.Context) error {
				return h.writeFile(file("pids.max"), "0")
			}, func() error {
				return h.writeFile(file("pids.max"), restore)
			}
	}
	return func(context.Context) error { return nil }, nop
}

// waitFor polls file until it contains want, for at most 200ms: a group may
// not freeze while a member sleeps uninterruptibly, and the kill proceeds
// anyway (frozen or not, SIGKILL is delivered once the group thaws).
func (h Hierarchy) waitFor(ctx context.Context, file, want string) {
	deadline := time.Now().Add(200 * time.Millisecond)
	for wait := 100 * time.Microsecond; time.Now().Before(deadline); wait = min(2*wait, 20*time.Millisecond) {
		b, err := os.ReadFile(file)
		if err != nil || bytes.Contains(b, []byte(want)) {
			return
		}
		if sleep(ctx, wait) != nil {
			return
		}
	}
}

func (h Hierarchy) writeFile(path, value string) error {
	if h.write != nil {
		return h.write(path, value)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, err)
	}
	return nil
}

func (h Hierarchy) sendKill(pid int) error {
	if h.signal != nil {
		return h.signal(pid)
	}
	return unix.Kill(pid, unix.SIGKILL)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
