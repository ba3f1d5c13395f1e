package instance

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// An instance's mount namespace is a copy of the mount namespace it is
// unshared from, and copying takes time in proportion to the mounts there.
// The daemon's own namespace holds three mounts per instance (the pins of
// its network, mount and UTS namespaces), which a new instance then had to
// detach again: creating n instances cost n². So instances are copied from
// a template instead: a mount namespace made from the daemon's, private,
// without /run/netns, RuntimeDir/instances and stray namespace mounts,
// held by an open file descriptor only. Its copy costs the same whatever
// the number of instances.
//
// The template is a snapshot of the host's mounts: it is made again when
// it is older than templateMaxAge, so a mount the host makes is seen by
// instances created from then on, as a copy of the daemon's namespace would
// see it; and closed once unused for as long, so it does not keep a
// filesystem the host unmounts busy (instances, which are private copies
// too, hold theirs for their lives).
const templateMaxAge = 2 * time.Second

// mntTemplate is one template mount namespace; refs counts the instances
// being copied from it, and the last one closes a retired template.
type mntTemplate struct {
	fd      int
	made    time.Time
	used    time.Time
	refs    int
	retired bool
}

// acquireTemplate returns the file descriptor of a current template mount
// namespace, and the function that releases it once the instance's
// namespace is made; -1 when there is none (the kernel lacks what it
// needs, open_tree and move_mount of Linux 5.2): the instance is then
// copied from the daemon's namespace. While a template is made again,
// instances are still copied from the older one.
func (m *Manager) acquireTemplate(nsDirs []string) (int, func()) {
	m.tmplMu.Lock()
	defer m.tmplMu.Unlock()
	for {
		if m.tmplOff {
			return -1, func() {}
		}
		t := m.tmpl
		if t != nil && (time.Since(t.made) <= templateMaxAge || m.tmplMaking != nil) {
			t.refs++
			t.used = time.Now()
			return t.fd, func() {
				m.tmplMu.Lock()
				defer m.tmplMu.Unlock()
				t.refs--
				if t.retired && t.refs == 0 {
					unix.Close(t.fd)
				}
			}
		}
		if ch := m.tmplMaking; ch != nil { // the first template is being made
			m.tmplMu.Unlock()
			<-ch
			m.tmplMu.Lock()
			continue
		}
		ch := make(chan struct{})
		m.tmplMaking = ch
		m.tmplMu.Unlock()
		fd, err := makeMountTemplate(nsDirs)
		m.tmplMu.Lock()
		m.tmplMaking = nil
		close(ch)
		if err != nil {
			m.tmplOff = true
			m.log().Warn("instances' mount namespaces are copied from the daemon's, which costs more the more instances there are", "err", err)
			continue
		}
		m.retireTemplateLocked()
		nt := &mntTemplate{fd: fd, made: time.Now()}
		m.tmpl = nt
		m.retireWhenUnused(nt)
	}
}

// retireWhenUnused retires t once it has not been used for templateMaxAge.
func (m *Manager) retireWhenUnused(t *mntTemplate) {
	time.AfterFunc(templateMaxAge, func() {
		m.tmplMu.Lock()
		defer m.tmplMu.Unlock()
		if m.tmpl != t {
			return
		}
		if time.Since(t.used) < templateMaxAge {
			m.retireWhenUnused(t)
			return
		}
		m.retireTemplateLocked()
	})
}

// dropTemplate closes the template (once unused): the mounts it copied
// change (Cleanup unmounts the instances' filesystem).
func (m *Manager) dropTemplate() {
	m.tmplMu.Lock()
	defer m.tmplMu.Unlock()
	m.retireTemplateLocked()
}

// retireTemplateLocked retires the current template; tmplMu is held.
func (m *Manager) retireTemplateLocked() {
	t := m.tmpl
	if t == nil {
		return
	}
	m.tmpl = nil
	t.retired = true
	if t.refs == 0 {
		unix.Close(t.fd)
	}
}

// makeMountTemplate makes a template mount namespace (see templateMaxAge)
// on a disposable thread and returns an open file descriptor of it.
func makeMountTemplate(nsDirs []string) (int, error) {
	// What copying from a template needs: cloning a mount (open_tree).
	probe, err := unix.OpenTree(unix.AT_FDCWD, "/", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("clone a mount (open_tree): %w", err)
	}
	unix.Close(probe)
	type result struct {
		fd  int
		err error
	}
	resc := make(chan result, 1)
	go onDisposableThread(func() {
		fd, err := func() (int, error) {
			if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
				return -1, fmt.Errorf("unshare the mount namespace: %w", err)
			}
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				return -1, fmt.Errorf("make / private: %w", err)
			}
			if err := detachNamespaceMounts(nsDirs); err != nil {
				return -1, err
			}
			return unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		}()
		resc <- result{fd, err}
	})
	r := <-resc
	if r.err != nil {
		return -1, errors.Join(errors.New("make the template mount namespace of instances"), r.err)
	}
	return r.fd, nil
}
