package instance

import (
	"sync"

	"golang.org/x/sys/unix"
)

// groupSync commits a filesystem for many writers at once: Sync returns
// once a commit that started after it was called has ended, and callers
// that arrive while one runs share the next. New instances each write a
// spec that must survive a power loss; waiting for the disk once for all
// those created at the same time, rather than twice for each (the file and
// its directory), keeps a burst of creations from queueing behind the
// disk.
type groupSync struct {
	mu      sync.Mutex
	cond    sync.Cond
	started uint64 // commits started
	ended   uint64 // the last commit ended (they run one at a time)
	running bool
	err     error // of the commit numbered ended
	// commit commits the filesystem holding dir; nil is syncfs(2).
	commit func(dir string) error
}

// Sync commits the filesystem holding dir.
func (g *groupSync) Sync(dir string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond.L == nil {
		g.cond.L = &g.mu
	}
	// The commit running now may have started before the caller's writes.
	want := g.started + 1
	for g.ended < want {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		g.started++
		n := g.started
		g.mu.Unlock()
		err := g.do(dir)
		g.mu.Lock()
		g.running, g.ended, g.err = false, n, err
		g.cond.Broadcast()
	}
	return g.err
}

func (g *groupSync) do(dir string) error {
	if g.commit != nil {
		return g.commit(dir)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}
