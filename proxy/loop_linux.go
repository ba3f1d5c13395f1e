package proxy

import (
	"context"
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vmss-emulator/vmss/rawsys"
	"github.com/vmss-emulator/vmss/tcpfd"

	"golang.org/x/sys/unix"
)

// Event loops for established TCP flows. A flow whose two sockets are raw
// descriptors (*tcpfd.Conn on both sides, as the load balancer's and NAT's
// are) is handed to one of GOMAXPROCS loops instead of getting a goroutine
// per direction. A loop owns an epoll instance holding the sockets of its
// flows (edge-triggered, in and out registered once, so no epoll_ctl per
// chunk) and moves the bytes of every flow that is ready in one pass, with
// one scratch buffer: one wake-up of one goroutine serves all the chunks
// that arrived meanwhile, where the per-direction goroutines each went
// through the scheduler and the runtime poller for each chunk.
//
// The loop's socket calls are made raw (package rawsys): they never wait,
// and made the usual way, sysmon took the loop's P whenever the kernel
// switched to a task the call woke (the backend accepting, the client
// reading) before returning, and the loop's thread then slept until it got
// a P back (with the other causes, since mended, 0.3 context switches more
// per connection than HAProxy).
//
// A loop never blocks a thread: its epoll descriptor is itself registered
// with the runtime poller (an epoll descriptor is readable while events are
// ready), so it takes what is ready with epoll_wait(0) and otherwise parks
// like any goroutine waiting on a socket (a thread of its own blocking in
// epoll_wait cost more: 1.3 context switches per keep-alive request against
// 0.8, as the runtime hands its P to other threads and takes it back). Its
// goroutine ends after a second
// without flows and is started again by the next flow.
//
// Semantics are the goroutine path's (Pipe): bytes are counted and
// reported as they are written, an end of stream is passed on with
// shutdown(SHUT_WR) and the flow ends when both directions have ended (the
// last close sends the FIN), an error on either side resets both, an idle
// flow is dropped silently or reset, and a flow killed from outside
// (CloseTo, Shutdown, Close) is closed by its loop with RST. The sockets
// are only ever touched by the loop's goroutine once handed over, so a
// descriptor number is never reused under a flow that still uses it.

// loopBuf is a loop's scratch buffer: a read that fills it is followed by
// another read at once.
const loopBuf = 64 << 10

// pumpReads is how many buffers a socket may read in one turn.
const pumpReads = 16

// idleTick is how often a loop with no idle timeouts wakes up to see
// whether it should end (it has no flows left).
const idleTick = time.Second

type loopConn struct {
	fd       int
	peer     *loopConn
	fl       *loopFlow
	up       bool   // reading this socket moves bytes client → backend
	pending  []byte // read from peer, not yet written to fd
	readable bool   // may have bytes (or EOF) to read
	writable bool   // has room to write
	hup      bool   // the peer's FIN or an error was signalled: read until EOF
	eof      bool   // read returned 0
	ended    bool   // this direction (fd → peer) is over: EOF passed on
	ackLeft  int    // reads still followed by TCP_QUICKACK
	queued   bool   // in the loop's again list
}

type loopFlow struct {
	client, backend loopConn
	cfg             PipeConfig
	res             Result
	last            int64 // now() of the last byte moved
	done            func(Result)
	over            bool // closed; only the loop reads and writes it
	lp              *loop
	killOnce        sync.Once
}

// killReq ends a flow on its loop: killed from outside (err nil) or
// failed (its sockets could not be watched).
type killReq struct {
	fl  *loopFlow
	how closeMode
	err error
}

type loop struct {
	idx    int // place among the loops
	ep     int
	efd    int      // eventfd: kills waiting in kills
	file   *os.File // what the loop parks on in the runtime poller
	raw    syscall.RawConn
	pfd    int  // file's descriptor (not from Fd, which would make it blocking)
	nested bool // file is an epoll set that holds ep while the loop is parked
	buf    []byte
	evs    []unix.EpollEvent
	batch  []*loopConn
	lbatch []*loopListener
	again  []*loopConn // readable sockets whose turn ended before they ran dry
	spare  []*loopConn

	nextTick int64 // now() when the next check of idle flows is due

	lagain []*loopListener // listeners whose turn ended before they ran dry
	// hotUntil is now() until which the loop waits for events holding its
	// thread and P (see wait); moved on by every wait that found events.
	hotUntil int64

	mu      sync.Mutex
	minIdle time.Duration // shortest idle timeout of the flows (0: none), as of the last check and adds since
	conns   map[int32]*loopConn
	lns     map[int32]*loopListener
	flows   map[*loopFlow]struct{}
	kills   []killReq
	calls   []func() // run on the loop's goroutine
	running bool
}

// loopListener is a listening socket a loop accepts on for a Forwarder
// (Forwarder.ConnectOnLoop): the loop accepts, connects the backend and
// serves the flow, all on its goroutine, with no hand-over between
// threads.
type loopListener struct {
	fd     int
	f      *Forwarder
	ctx    context.Context // Serve's
	nowait context.Context // ctx under tcpfd.NoWait
	// paused receives the error after which the loop stopped accepting
	// (and forgot the listener); Serve decides what follows.
	paused  chan error
	queued  bool // in the loop's lagain list
	removed bool // no longer the loop's (loop goroutine only)
}

// efdKey marks the eventfd's events (no socket has descriptor -1).
const efdKey = -1

// Loops wait for events in one of two ways. Parked in the runtime poller,
// a loop gives its P back while it waits; but each wake-up then goes
// through the scheduler, which wakes a second thread to look for more work
// (1.2–1.4 context switches per keep-alive request against HAProxy's
// 0.7–0.8). So while events keep coming (within hotHold of the last), a
// loop waits in epoll_pwait itself, keeping its thread and P, and its
// wake-up is the kernel's alone, as an HAProxy thread's is. The runtime
// sees a running goroutine: sysmon and the garbage collector interrupt the
// wait with a signal (EINTR) when they need the P, and the loop yields at
// its next call. That takes a P from the rest of the daemon, so it is done
// only where one is left over: there are GOMAXPROCS-1 loops (one at
// least), and with GOMAXPROCS 1 the loop always parks. SetLoopProcs adds
// the P that gives each core a loop.
const hotHold = time.Millisecond

// yieldEvery is how long a busy loop runs before it yields. A goroutine
// that runs for 10 ms without passing through the scheduler is preempted
// by sysmon with a signal, and one caught in a system call made the usual
// way loses its P to another thread. A loop that holds its P while it
// waits never passes through the scheduler by itself. Each yield also
// wakes an idle thread to look for work (which finds none and sleeps
// again), so it is not done more often than needed: every 5 ms leaves
// sysmon's 10 ms room to spare.
const yieldEvery = 5 * time.Millisecond

// holdOK reports whether loops may wait holding their P; set with the
// loops, before any runs.
var holdOK bool

// loopsMade is set once the loops are made (GOMAXPROCS no longer counts).
var loopsMade atomic.Bool

var loops = sync.OnceValue(func() []*loop {
	loopsMade.Store(true)
	procs := runtime.GOMAXPROCS(0)
	holdOK = procs >= 2 && os.Getenv("VMSS_PROXY_HOLD") != "0"
	n := max(1, procs-1)
	ls := make([]*loop, 0, n)
	for i := range n {
		l, err := newLoop()
		if err != nil {
			for _, l := range ls {
				l.file.Close()
				if l.nested {
					unix.Close(l.ep)
				}
				unix.Close(l.efd)
			}
			return nil // no loops: flows get their goroutines
		}
		l.idx = i
		ls = append(ls, l)
	}
	return ls
})

var nextLoop atomic.Uint32

// pickLoop returns the loop for the next flow, or nil when loops are off
// or could not be made.
func pickLoop() *loop {
	ls := usableLoops()
	if len(ls) == 0 {
		return nil
	}
	return ls[int(nextLoop.Add(1))%len(ls)]
}

// SetLoopProcs gives the event loops one P each and leaves the rest of the
// program the Ps it had: where there are n ≥ 2 Ps (GOMAXPROCS, by default
// the CPUs the process may use), it makes them n+1, so that there are n
// loops, one per core as HAProxy has a thread per core, each of which may
// wait holding its P (see hotHold). Without it there are n-1 loops, one on
// a 2-core host. It does nothing when the GOMAXPROCS environment variable
// is set (the user's choice stands), with one P, with loops off, or once
// the loops exist. Call it at start, before anything is proxied; it
// returns the Ps before and after. Setting GOMAXPROCS stops the runtime
// from following later changes of the process's CPU limit.
func SetLoopProcs() (before, after int) {
	before = runtime.GOMAXPROCS(0)
	if os.Getenv("GOMAXPROCS") != "" || before < 2 || !useLoops.Load() || loopsMade.Load() {
		return before, before
	}
	runtime.GOMAXPROCS(before + 1)
	return before, before + 1
}

// useLoops can be turned off to give every flow its goroutines (tests and
// benchmarks compare the two): VMSS_PROXY_LOOPS=0.
var useLoops atomic.Bool

func init() { useLoops.Store(os.Getenv("VMSS_PROXY_LOOPS") != "0") }

func newLoop() (*loop, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(ep)
		return nil, os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: efdKey}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		unix.Close(ep)
		unix.Close(efd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	// The descriptor the loop parks on in the runtime poller: the epoll
	// set itself, or, where loops wait holding their P, an epoll set that
	// holds it only while the loop is parked (else every event the loop
	// takes itself would also wake the runtime's poller, for nothing).
	pfd := ep
	if holdOK {
		if pfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
			unix.Close(ep)
			unix.Close(efd)
			return nil, os.NewSyscallError("epoll_create1", err)
		}
	}
	// Non-blocking, so that os.NewFile registers it with the runtime poller.
	if err := unix.SetNonblock(pfd, true); err != nil {
		unix.Close(ep)
		unix.Close(efd)
		if pfd != ep {
			unix.Close(pfd)
		}
		return nil, os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(pfd), "epoll")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		if pfd != ep {
			unix.Close(ep)
		}
		unix.Close(efd)
		return nil, err
	}
	return &loop{
		ep: ep, efd: efd, file: f, raw: raw, pfd: pfd, nested: pfd != ep,
		buf:   make([]byte, loopBuf),
		evs:   make([]unix.EpollEvent, 128),
		conns: map[int32]*loopConn{},
		lns:   map[int32]*loopListener{},
		flows: map[*loopFlow]struct{}{},
	}, nil
}

// usableLoops returns the loops, or none when loops are off or could not
// be made.
func usableLoops() []*loop {
	if !useLoops.Load() {
		return nil
	}
	return loops()
}

// addListener makes the loop accept on ll.fd until removeListener, or an
// accept error (sent on ll.paused). ll is new: once let go of, a
// loopListener is not added again.
//
// Every loop watches a Forwarder's listening socket, each with a
// loopListener of its own, registered with EPOLLEXCLUSIVE: the kernel
// wakes one loop that waits for events, and a loop busy with its flows
// finds the socket readable when it next looks. With one loop only, the
// loop's thread was where the work of every connection queued, and on 2
// cores the other core idled (17% of the time, against 2% with HAProxy's
// thread per core).
func (l *loop) addListener(ll *loopListener) error {
	l.mu.Lock()
	l.lns[int32(ll.fd)] = ll
	start := !l.running
	l.running = true
	l.mu.Unlock()
	if start {
		go l.run()
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET | unix.EPOLLEXCLUSIVE, Fd: int32(ll.fd)}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, ll.fd, &ev); err != nil {
		done := make(chan struct{})
		l.do(func() { l.forget(ll); close(done) })
		<-done
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// removeListener stops the loop accepting on ll.fd; once it returns, the
// loop no longer touches the descriptor. It does nothing when the loop has
// let go of ll already (paused it).
func (l *loop) removeListener(ll *loopListener) {
	done := make(chan struct{})
	l.do(func() {
		l.forget(ll)
		close(done)
	})
	<-done
}

// forget drops ll from the loop; on the loop's goroutine.
func (l *loop) forget(ll *loopListener) {
	if ll.removed {
		return
	}
	ll.removed = true
	_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, ll.fd, nil) // fails only if it was never added
	l.mu.Lock()
	delete(l.lns, int32(ll.fd))
	l.mu.Unlock()
}

// do runs fn on the loop's goroutine, starting the loop if it has ended.
func (l *loop) do(fn func()) {
	l.mu.Lock()
	l.calls = append(l.calls, fn)
	start := !l.running
	l.running = true
	l.mu.Unlock()
	if start {
		go l.run()
	}
	l.wake()
}

// loopAccept is tcpfd.Accept; tests make it fail.
var loopAccept = tcpfd.Accept

// acceptBudget is how many clients a listener may accept in one turn.
const acceptBudget = 32

// accept takes the clients queued on ll and serves each on this loop.
func (l *loop) accept(ll *loopListener) {
	for range acceptBudget {
		if ll.removed {
			return
		}
		c, err := loopAccept(ll.fd)
		if err == unix.EAGAIN {
			return
		}
		if err != nil {
			l.forget(ll)
			ll.paused <- err
			return
		}
		ll.f.acceptedOnLoop(l, ll, c)
	}
	if !ll.queued {
		ll.queued = true
		l.lagain = append(l.lagain, ll)
	}
}

// add hands the flow of client and backend (descriptors the caller no
// longer uses) to the loop. done is called on the loop's goroutine when
// the flow has ended; it must not block. A socket the loop cannot watch
// ends the flow with that error.
func (l *loop) add(client, backend int, cfg PipeConfig, done func(Result)) *loopFlow {
	fl := &loopFlow{cfg: cfg, done: done, lp: l, last: now()}
	fl.client = loopConn{fd: client, peer: &fl.backend, fl: fl, up: true, writable: true}
	fl.backend = loopConn{fd: backend, peer: &fl.client, fl: fl, writable: true}
	if cfg.QuickAck {
		fl.client.ackLeft, fl.backend.ackLeft = QuickAckReads, QuickAckReads
	}
	l.mu.Lock()
	l.conns[int32(client)] = &fl.client
	l.conns[int32(backend)] = &fl.backend
	l.flows[fl] = struct{}{}
	sooner := false // the loop's next check must come sooner
	if d := cfg.IdleTimeout; d > 0 && (l.minIdle == 0 || d < l.minIdle) {
		l.minIdle = d
		sooner = d/4 < idleTick
	}
	start := !l.running
	l.running = true
	l.mu.Unlock()
	if start {
		go l.run()
	} else if sooner {
		l.wake()
	}
	for _, c := range []*loopConn{&fl.client, &fl.backend} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(c.fd)}
		if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
			// The loop may have seen the other socket already: it ends
			// the flow (both sockets reset) and reports the error.
			fl.post(killReq{how: closeRST, err: os.NewSyscallError("epoll_ctl", err)})
			break
		}
	}
	return fl
}

// kill ends the flow from outside (drain end, shutdown, context) on its
// loop's goroutine. Only the first call counts.
func (fl *loopFlow) kill(how closeMode) { fl.post(killReq{how: how}) }

func (fl *loopFlow) post(k killReq) {
	fl.killOnce.Do(func() {
		k.fl = fl
		l := fl.lp
		l.mu.Lock()
		l.kills = append(l.kills, k)
		l.mu.Unlock()
		l.wake()
	})
}

// wake makes the loop look at its kills and its check interval.
func (l *loop) wake() {
	one := [8]byte{1}
	_, _ = rawsys.Write(l.efd, one[:]) // fails only when the counter is full, which still wakes the loop
}

// run serves the loop's flows until it has had none for idleTick.
func (l *loop) run() {
	l.nextTick = now() + int64(l.tickEvery())
	yielded := now()
	for {
		if t := now(); t-yielded > int64(yieldEvery) {
			// See yieldEvery.
			runtime.Gosched()
			yielded = t
		}
		n, err := l.wait()
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			// The epoll descriptor failed, which it does not: keep the
			// flows from hanging by ending them.
			l.endAll(closeRST)
			l.mu.Lock()
			l.running = false
			l.mu.Unlock()
			return
		}
		l.handle(n)
		l.again, l.spare = l.spare[:0], l.again
		for _, c := range l.spare {
			c.queued = false
			l.pump(c)
		}
		if len(l.lagain) > 0 {
			lns := l.lagain
			l.lagain = nil
			for _, ll := range lns {
				ll.queued = false
				l.accept(ll)
			}
		}
		// A busy loop may never sleep until the deadline: checks are due
		// by the clock, not by a wait that timed out.
		if t := now(); t >= l.nextTick {
			if l.tick() {
				return
			}
			l.nextTick = t + int64(l.tickEvery())
		}
	}
}

// wait returns the number of events in l.evs: at once if some are ready,
// else after parking in the runtime poller until some are, or until the
// next check is due (then 0 and os.ErrDeadlineExceeded).
func (l *loop) wait() (int, error) {
	var n int
	var werr error
	take := func(uintptr) bool {
		for {
			n, werr = rawsys.EpollWait(l.ep, l.evs, 0)
			if werr != unix.EINTR {
				return n > 0 || werr != nil
			}
		}
	}
	if take(0); n > 0 || werr != nil || len(l.again) > 0 || len(l.lagain) > 0 {
		if n > 0 {
			l.hotUntil = now() + int64(hotHold)
		}
		return n, werr
	}
	if t := now(); holdOK && t < l.hotUntil {
		ms := max(0, (min(l.hotUntil, l.nextTick)-t)/int64(time.Millisecond)+1) // never -1, which waits for ever
		r, err := rawsys.EpollWait(l.ep, l.evs, int(ms))
		switch {
		case err == unix.EINTR: // the runtime wants the P: the caller's next call yields it
			return 0, nil
		case err != nil:
			return 0, os.NewSyscallError("epoll_pwait", err)
		case r > 0:
			l.hotUntil = now() + int64(hotHold)
		}
		return r, nil
	}
	if l.nested {
		ev := unix.EpollEvent{Events: unix.EPOLLIN}
		if err := unix.EpollCtl(l.pfd, unix.EPOLL_CTL_ADD, l.ep, &ev); err != nil {
			return 0, os.NewSyscallError("epoll_ctl", err)
		}
		defer unix.EpollCtl(l.pfd, unix.EPOLL_CTL_DEL, l.ep, nil) // cannot fail: it was added
	}
	_ = l.file.SetReadDeadline(time.Now().Add(time.Duration(l.nextTick - now()))) // a pollable file: cannot fail
	if err := l.raw.Read(take); err != nil {
		return 0, err
	}
	if n > 0 {
		l.hotUntil = now() + int64(hotHold)
	}
	return n, werr
}

// tickEvery is the time between checks: a quarter of the shortest idle
// timeout of the loop's flows (so an idle flow ends between its timeout
// and 1.25 × it), else idleTick.
func (l *loop) tickEvery() time.Duration {
	l.mu.Lock()
	d := l.minIdle
	l.mu.Unlock()
	if d <= 0 || d/4 > idleTick {
		return idleTick
	}
	return max(d/4, time.Millisecond)
}

// tick ends the idle flows, notes the shortest idle timeout left, and
// reports whether the loop has stopped (no flows left).
func (l *loop) tick() bool {
	t := now()
	var idle []*loopFlow
	l.mu.Lock()
	if len(l.flows) == 0 && len(l.kills) == 0 && len(l.calls) == 0 && len(l.lns) == 0 {
		l.running = false
		l.mu.Unlock()
		return true
	}
	l.minIdle = 0
	for fl := range l.flows {
		d := fl.cfg.IdleTimeout
		if d <= 0 {
			continue
		}
		if time.Duration(t-fl.last) >= d {
			idle = append(idle, fl)
		} else if l.minIdle == 0 || d < l.minIdle {
			l.minIdle = d
		}
	}
	l.mu.Unlock()
	for _, fl := range idle {
		fl.res.Idle = true
		how := closeSilent
		if fl.cfg.ResetOnIdle {
			how = closeRST
		}
		l.finish(fl, how)
	}
	return false
}

func (l *loop) handle(n int) {
	l.batch = l.batch[:0]
	l.mu.Lock()
	for i := range n {
		if l.evs[i].Fd == efdKey {
			l.batch = append(l.batch, nil)
			continue
		}
		c := l.conns[l.evs[i].Fd]
		if c == nil {
			if ll := l.lns[l.evs[i].Fd]; ll != nil {
				l.lbatch = append(l.lbatch, ll)
			}
		}
		l.batch = append(l.batch, c)
	}
	l.mu.Unlock()
	for i, c := range l.batch {
		if c == nil {
			if l.evs[i].Fd == efdKey {
				l.doKills()
				l.nextTick = min(l.nextTick, now()+int64(l.tickEvery()))
			}
			continue
		}
		if c.fl.over {
			continue
		}
		e := l.evs[i].Events
		if e&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			c.readable = true
			if e&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				c.hup = true
			}
		}
		if e&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			c.writable = true
		}
		// Bytes this socket can take come from its peer; bytes it has go
		// to its peer.
		l.pump(c.peer)
		l.pump(c)
	}
	// Clients last: the flows they bring may take descriptor numbers of
	// flows that ended in this batch.
	for i, ll := range l.lbatch {
		l.lbatch[i] = nil
		l.accept(ll)
	}
	l.lbatch = l.lbatch[:0]
}

func (l *loop) doKills() {
	var b [8]byte
	_, _ = rawsys.Read(l.efd, b[:]) // resets the counter; EAGAIN if already read
	l.mu.Lock()
	kills, calls := l.kills, l.calls
	l.kills, l.calls = nil, nil
	l.mu.Unlock()
	for _, fn := range calls {
		fn()
	}
	for _, k := range kills {
		if k.fl.over {
			continue
		}
		if k.err != nil {
			k.fl.res.Err = k.err
		} else {
			k.fl.res.Aborted = true
		}
		l.finish(k.fl, k.how)
	}
}

// endAll ends every flow of the loop.
func (l *loop) endAll(how closeMode) {
	l.mu.Lock()
	fls := make([]*loopFlow, 0, len(l.flows))
	for fl := range l.flows {
		fls = append(fls, fl)
	}
	l.mu.Unlock()
	for _, fl := range fls {
		l.finish(fl, how)
	}
}

// pump moves what src has to its peer, as far as both sockets allow.
func (l *loop) pump(src *loopConn) {
	dst, fl := src.peer, src.fl
	for reads := 0; !fl.over; {
		if len(dst.pending) > 0 {
			if !dst.writable {
				return
			}
			n, err := rawsys.Write(dst.fd, dst.pending)
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				dst.writable = false
				return
			}
			if err != nil {
				l.fail(fl, "write", err)
				return
			}
			l.moved(src, n)
			dst.pending = dst.pending[n:]
			if len(dst.pending) == 0 {
				dst.pending = nil
			}
			continue
		}
		if src.eof {
			if !src.ended {
				l.endDirection(src)
			}
			return
		}
		if !src.readable {
			return
		}
		if reads == pumpReads {
			// A fast sender must not keep the loop from its other flows:
			// come back to it after the others had their turn.
			if !src.queued {
				src.queued = true
				l.again = append(l.again, src)
			}
			return
		}
		reads++
		n, err := rawsys.Read(src.fd, l.buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			src.readable = false
			return
		case err != nil:
			l.fail(fl, "read", err)
			return
		case n == 0:
			src.eof = true
			continue
		}
		// A short read took everything queued: with edge-triggered
		// events, bytes that come later bring a new event. A FIN already
		// signalled brings none, so then read on until EOF.
		if n < len(l.buf) && !src.hup {
			src.readable = false
		}
		if src.ackLeft > 0 {
			src.ackLeft--
			_ = rawsys.SetsockoptInt(src.fd, unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1) // best effort, as in the splicer
		}
		w := 0
		for w < n {
			m, err := rawsys.Write(dst.fd, l.buf[w:n])
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				dst.writable = false
				break
			}
			if err != nil {
				l.moved(src, w)
				l.fail(fl, "write", err)
				return
			}
			w += m
		}
		l.moved(src, w)
		if w < n {
			dst.pending = append([]byte(nil), l.buf[w:n]...)
			return
		}
	}
}

// moved accounts n bytes written from src to its peer.
func (l *loop) moved(src *loopConn, n int) {
	if n <= 0 {
		return
	}
	fl := src.fl
	fl.last = now()
	if src.up {
		fl.res.Up += int64(n)
		if fl.cfg.Progress != nil {
			fl.cfg.Progress(int64(n), 0)
		}
	} else {
		fl.res.Down += int64(n)
		if fl.cfg.Progress != nil {
			fl.cfg.Progress(0, int64(n))
		}
	}
}

// endDirection passes src's end of stream on to its peer; the flow ends
// when both directions have.
func (l *loop) endDirection(src *loopConn) {
	src.ended = true
	if src.peer.ended {
		l.finish(src.fl, closeFIN) // the close sends the FIN
		return
	}
	if err := rawsys.Shutdown(src.peer.fd, unix.SHUT_WR); err != nil && err != unix.ENOTCONN {
		l.fail(src.fl, "shutdown", err)
	}
}

// fail ends the flow after an error on one of its sockets: both sides are
// reset, as an L4 balancer passes a reset through.
func (l *loop) fail(fl *loopFlow, op string, err error) {
	if fl.res.Err == nil && !isClosed(err) {
		fl.res.Err = os.NewSyscallError(op, err)
	}
	l.finish(fl, closeRST)
}

// finish closes the flow's sockets (closing removes them from the epoll
// set) and reports the result.
func (l *loop) finish(fl *loopFlow, how closeMode) {
	if fl.over {
		return
	}
	fl.over = true
	l.mu.Lock()
	delete(l.conns, int32(fl.client.fd))
	delete(l.conns, int32(fl.backend.fd))
	delete(l.flows, fl)
	l.mu.Unlock()
	closeFD(fl.client.fd, how)
	closeFD(fl.backend.fd, how)
	if fl.res.Aborted {
		fl.res.Err = nil
	}
	if fl.done != nil {
		fl.done(fl.res)
	}
}

func closeFD(fd int, how closeMode) {
	switch how {
	case closeRST:
		_ = rawsys.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1}) // without it: an ordinary FIN
	case closeSilent:
		_ = rawsys.SetsockoptInt(fd, unix.IPPROTO_TCP, tcpRepair, 1) // needs CAP_NET_ADMIN; without it: a FIN
	}
	_ = rawsys.Close(fd) // the flow is over; nothing to do about a failed close
}
