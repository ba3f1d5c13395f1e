package nsnet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// RunDir is where named network namespaces are bind-mounted, the same place
// iproute2 (`ip netns`) uses.
const RunDir = "/run/netns"

// Path returns the path of the named namespace, RunDir/name.
func Path(name string) string { return filepath.Join(RunDir, name) }

// ValidName reports whether name can name a namespace: non-empty, at most 255
// bytes, no slash, not "." or "..".
func ValidName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("invalid network namespace name %q: must be a non-empty file name", name)
	case len(name) > 255:
		return fmt.Errorf("invalid network namespace name %q: longer than 255 bytes", name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("invalid network namespace name %q: must not contain '/'", name)
	}
	return nil
}

// Exists reports whether RunDir/name is a mounted network namespace. A plain
// file left behind by an interrupted create does not count.
func Exists(name string) bool {
	if ValidName(name) != nil {
		return false
	}
	return isNetns(Path(name))
}

func isNetns(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// List returns the names in RunDir that start with prefix, sorted. A missing
// RunDir means there are none.
func List(prefix string) ([]string, error) { return listIn(RunDir, prefix) }

func listIn(dir, prefix string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list network namespaces in %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Create creates a new network namespace and bind-mounts it at RunDir/name.
// The loopback interface of the new namespace is down. Create fails with an error
// matching os.ErrExist when the name is taken; a stale plain file (left by
// an interrupted create) is replaced. The calling thread is not affected.
//
// Like `ip netns add`, Create first makes RunDir a shared mount point (see
// EnsureRunDir).
func Create(name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if err := EnsureRunDir(); err != nil {
		return fmt.Errorf("create network namespace %s: %w", Path(name), err)
	}
	path := Path(name)
	if isNetns(path) {
		return fmt.Errorf("create network namespace %s: %w", path, os.ErrExist)
	}
	// A plain file here is the remnant of a create that did not finish.
	_ = os.Remove(path) // absent is fine; OpenFile reports what stays in the way
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create network namespace %s: %w", path, err)
	}
	f.Close()

	errc := make(chan error, 1)
	go func() {
		// This thread is never unlocked: it ends with the goroutine and so
		// never runs other goroutines from inside the new namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind mount %s: %w", self, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		_ = os.Remove(path) // undo the half-made create; the error below is the one to act on
		return fmt.Errorf("create network namespace %s: %w", path, err)
	}
	return nil
}

// Remove unmounts and deletes RunDir/name, every mount on it included (see
// UnmountAndRemove). The namespace itself goes away once nothing else holds
// it: no process inside, no open socket created in it, no open handle. A
// missing name is not an error.
func Remove(name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if err := UnmountAndRemove(Path(name)); err != nil {
		return fmt.Errorf("remove network namespace %s: %w", Path(name), err)
	}
	return nil
}
