package instance

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// sweeper kills the processes that entered instances' namespaces without
// joining their cgroups (through nsenter or `ip netns exec`): the only way
// to find them is to look at every process of the host, O(processes). One
// scan of /proc serves every sweep asked for meanwhile, so deleting many
// instances at once costs a few scans, not one per instance (each of which
// grows with the instances' processes).
//
// Scans that follow each other are paced: after a scan that took d, the
// next starts no sooner than d later, so sweeps keep to half a core
// and the sweeps asked for meanwhile share that next scan. A scan costs in
// proportion to the host's processes, which grow with the instances, and
// deleting n instances asks for n sweeps: back to back, scans took a core
// for the whole delete; paced, the number of scans does not grow with n
// (their length does), so the cost per deleted instance stays flat.
//
// The zero value is ready; the seams are for tests.
type sweeper struct {
	members func(want map[nsID]bool, kinds []string) ([]member, error) // nil: scan /proc
	signal  func(pid int) error                                        // nil: SIGKILL
	pause   func(time.Duration)                                        // nil: time.Sleep

	mu      sync.Mutex
	pending []*sweepReq
	running bool
	scans   int // scans of /proc done, for tests
}

// member is a process found in one of the namespaces looked for.
type member struct {
	pid int
	ns  nsID
}

// sweepReq is one caller's sweep: its namespaces, and what it learns.
type sweepReq struct {
	ctx   context.Context
	ids   map[nsID]bool
	kinds []string
	first chan struct{} // closed after its first scan
	done  chan struct{} // closed when it is over
	// Set by the sweeping goroutine, under sweeper.mu.
	scanned bool
	killed  int
	alive   []int // members seen in the latest scan
	err     error
}

// sweep kills every process, other than this one, in the namespaces ids
// (of the given kinds, e.g. "mnt" and "net"), until a scan finds none or
// ctx is done. It returns how many processes it signalled.
func (s *sweeper) sweep(ctx context.Context, ids map[nsID]bool, kinds []string, log *slog.Logger) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	r := &sweepReq{ctx: ctx, ids: ids, kinds: kinds, first: make(chan struct{}), done: make(chan struct{})}
	s.mu.Lock()
	s.pending = append(s.pending, r)
	if !s.running {
		s.running = true
		go s.run(log)
	}
	s.mu.Unlock()
	select {
	case <-r.done:
		s.mu.Lock()
		defer s.mu.Unlock()
		return r.killed, r.err
	case <-ctx.Done():
		// Every sweep gets one scan, so that an instance without stray
		// processes is removed even with ctx done.
		<-r.first
		s.mu.Lock()
		defer s.mu.Unlock()
		select {
		case <-r.done:
			return r.killed, r.err
		default:
		}
		return r.killed, fmt.Errorf("processes %v still alive in the instance's namespaces: %w", r.alive, ctx.Err())
	}
}

// run scans and kills in rounds, for every sweep pending, until none is
// left: a sweep ends with the first scan that finds nothing of its
// namespaces (a process that does not die delays only its own sweep), or
// when its caller gives up.
func (s *sweeper) run(log *slog.Logger) {
	var active []*sweepReq
	wait := time.Millisecond
	var rest time.Duration // the pause owed by the previous scan (its length)
	for {
		if rest > 0 {
			s.mu.Lock()
			more := len(active) > 0 || len(s.pending) > 0
			s.mu.Unlock()
			if more {
				s.sleep(rest)
			}
		}
		s.mu.Lock()
		active = append(active, s.pending...)
		s.pending = nil
		live := active[:0]
		for _, r := range active {
			if r.ctx.Err() == nil || !r.scanned {
				live = append(live, r)
			}
		}
		active = live
		if len(active) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		s.scans++
		s.mu.Unlock()

		want := map[nsID]bool{}
		var kinds []string
		for _, r := range active {
			for id := range r.ids {
				want[id] = true
			}
			for _, k := range r.kinds {
				if !slices.Contains(kinds, k) {
					kinds = append(kinds, k)
				}
			}
		}
		start := time.Now()
		found, err := s.scan(want, kinds)
		rest = time.Since(start)
		byNS := map[nsID][]int{}
		for _, f := range found {
			byNS[f.ns] = append(byNS[f.ns], f.pid)
		}
		killed := map[int]bool{}
		for _, f := range found {
			if !killed[f.pid] && s.kill(f.pid) == nil {
				killed[f.pid] = true
			}
		}
		s.mu.Lock()
		next := active[:0]
		for _, r := range active {
			var pids []int
			for id := range r.ids {
				pids = append(pids, byNS[id]...)
			}
			r.alive = pids
			for _, pid := range pids {
				if killed[pid] {
					r.killed++
				}
			}
			if !r.scanned {
				r.scanned = true
				close(r.first)
			}
			switch {
			case err != nil:
				r.err = err
				close(r.done)
			case len(pids) == 0:
				close(r.done)
			default:
				next = append(next, r)
			}
		}
		s.mu.Unlock()
		if n := len(killed); n > 0 {
			log.Warn("killed processes that were in instance namespaces but not in their cgroups", "count", n)
		}
		active = next
		if len(active) == 0 {
			wait = time.Millisecond
			continue // take what came meanwhile (after the pause), or stop
		}
		// Processes were left: look again soon, backing off.
		rest = max(rest, wait)
		wait = min(2*wait, 50*time.Millisecond)
	}
}

func (s *sweeper) sleep(d time.Duration) {
	if s.pause != nil {
		s.pause(d)
		return
	}
	time.Sleep(d)
}

func (s *sweeper) scan(want map[nsID]bool, kinds []string) ([]member, error) {
	if s.members != nil {
		return s.members(want, kinds)
	}
	return namespaceMembers(want, kinds, os.Getpid())
}

func (s *sweeper) kill(pid int) error {
	if s.signal != nil {
		return s.signal(pid)
	}
	return unix.Kill(pid, unix.SIGKILL)
}

// namespaceMembers lists the live processes in the namespaces ids, other
// than self, with the namespace each was found in. Exited processes
// (zombies) have no namespaces and are not listed.
func namespaceMembers(ids map[nsID]bool, kinds []string, self int) ([]member, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("scan /proc: %w", err)
	}
	var out []member
	var st unix.Stat_t
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil || pid == self {
			continue
		}
		for _, k := range kinds {
			if unix.Stat("/proc/"+n+"/ns/"+k, &st) == nil {
				if id := (nsID{uint64(st.Dev), st.Ino}); ids[id] {
					out = append(out, member{pid, id})
					break
				}
			}
		}
	}
	return out, nil
}
