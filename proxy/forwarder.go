package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmss-emulator/vmss/tcpfd"
)

// Target is where Connect sends one client.
type Target struct {
	// Key names the backend for tracking (ActiveTo, CloseTo). Empty is a
	// valid key of its own.
	Key string
	// Conn is the dialled backend connection. Required.
	Conn net.Conn
	// Pipe tunes this flow (idle timeout, reset, progress).
	Pipe PipeConfig
	// Done, when set, is called once the flow has ended.
	Done func(Result)
}

// ConnectFunc chooses and dials a backend for client. An error refuses the
// client: it is closed with RST.
type ConnectFunc func(ctx context.Context, client net.Conn) (Target, error)

// Forwarder accepts TCP clients on Listener and pipes each to the Target
// returned by Connect. Set the fields, then call Serve once. Listener and
// Connect are required; the other fields may be zero.
type Forwarder struct {
	Listener net.Listener
	Connect  ConnectFunc
	// Refused, when set, is called for each client Connect refused.
	Refused func(client net.Conn, err error)
	// Logger receives accept errors. nil discards.
	Logger *slog.Logger
	// MaxBackoff caps the pause after a temporary accept error such as
	// EMFILE. Zero means one second.
	MaxBackoff time.Duration
	// ConnectOnLoop says Connect honours tcpfd.NoWait: called with a
	// context for which tcpfd.MayWait is false, it does not block (its
	// dials fail with tcpfd.ErrWouldBlock rather than wait for a
	// handshake) and returns an error matching tcpfd.ErrWouldBlock when
	// it would have waited. Clients are then accepted, connected and
	// served on an event loop, with no hand-over between threads (every
	// loop watches the listening socket, and the kernel wakes one that
	// waits); one
	// whose Connect would block is called again, with Serve's ctx, on a
	// goroutine of its own. Needs a *net.TCPListener prepared by
	// tcpfd.ListenControl, as for the accept of tcpfd.Listener. Serve then
	// closes Listener once the loop has a duplicate of its socket (so that
	// the runtime's poller does not wake for every client); its Addr stays
	// valid, and the socket listens until Serve returns.
	ConnectOnLoop bool

	mu       sync.Mutex // fdl, and the set-up of the rest
	shards   [flowShards]flowShard
	closing  atomic.Bool    // set once; read under a shard's mu where a flow is admitted
	wg       sync.WaitGroup // flows, and the goroutines of clients
	gate     serveGate
	shutdown chan struct{} // closed by Shutdown/Close
	once     sync.Once
	fdl      *tcpfd.Listener // Serve's accepting duplicate of Listener, if any
}

// flowShards is how many parts a Forwarder's table of flows has. A flow on
// loop i is tracked in part i mod flowShards (flows on goroutines in part
// 0), so that loops accepting at the same time do not queue on one lock:
// with one lock, a loop that found it held parked its goroutine and left
// its core idle until woken.
const flowShards = 8

// flowShard is a part of a Forwarder's table of flows.
type flowShard struct {
	mu     sync.Mutex
	flows  map[killer]string // flow → backend key
	perKey map[string]int
}

func (f *Forwarder) init() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.shutdown == nil {
		for i := range f.shards {
			f.shards[i].flows = map[killer]string{}
			f.shards[i].perKey = map[string]int{}
		}
		f.shutdown = make(chan struct{})
	}
}

// shard is where the flows of loop l (nil: of goroutines) are tracked.
func (f *Forwarder) shard(l *loop) *flowShard {
	if l == nil {
		return &f.shards[0]
	}
	return &f.shards[l.idx%flowShards]
}

// admit counts a new client in f.wg unless the Forwarder is closing. It
// checks under s.mu: stopAccepting sets closing and then takes every
// shard's lock, so a client is either admitted before that or refused.
func (f *Forwarder) admit(s *flowShard) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.closing.Load() {
		return false
	}
	f.wg.Add(1)
	return true
}

// Serve accepts clients until Shutdown or Close is called, ctx is done
// (which closes everything like Close), or the listener fails. A
// *net.TCPListener is accepted from through a duplicate of its socket
// (tcpfd.Listener), which Shutdown and Close close too: closing the
// Listener alone does not stop Serve then. It returns
// nil after a Shutdown/Close and otherwise the accept error. Serve returns
// once the accept loop has stopped; flows may still be running (Shutdown
// and Close wait for them).
func (f *Forwarder) Serve(ctx context.Context) error {
	f.init()
	if err := f.gate.begin("Forwarder"); err != nil {
		return err
	}
	defer f.gate.end()
	stop := context.AfterFunc(ctx, func() { _ = f.Close() })
	defer stop()
	log := orDiscard(f.Logger)
	maxBackoff := f.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = time.Second
	}
	if f.ConnectOnLoop {
		if ls := usableLoops(); len(ls) > 0 {
			if fd := f.loopFD(); fd >= 0 {
				return f.serveOnLoops(ctx, ls, fd, maxBackoff)
			}
		}
	}
	var backoff time.Duration
	accept := f.Listener.Accept
	if fl := f.fdListener(); fl != nil {
		accept = func() (net.Conn, error) {
			c, err := fl.Accept()
			if err != nil {
				return nil, err // a nil *tcpfd.Conn must not become a non-nil net.Conn
			}
			return c, nil
		}
	}
	for {
		c, err := accept()
		if err != nil {
			select {
			case <-f.shutdown:
				return nil
			default:
			}
			if stopped, ferr := f.pause(log, err, &backoff, maxBackoff); ferr != nil || stopped {
				return ferr
			}
			continue
		}
		backoff = 0
		if !f.admit(f.shard(nil)) {
			_ = c.Close() // refused during shutdown: nothing more to do with it
			return nil
		}
		go f.handle(ctx, c)
	}
}

// fdListener returns the tcpfd.Listener that accepts the clients of a
// *net.TCPListener as *tcpfd.Conn (no getsockname and no setsockopt per
// accept, as net's Accept makes), or nil, to accept with Listener.Accept.
// It needs a listening socket prepared by tcpfd.ListenControl before it
// listened (HostListen and nsnet.ListenTCP do): accepted sockets inherit
// TCP_NODELAY from it, which net would otherwise set on each. Options set
// now would miss the clients already queued.
func (f *Forwarder) fdListener() *tcpfd.Listener {
	tl, ok := f.Listener.(*net.TCPListener)
	if !ok {
		return nil
	}
	if rc, err := tl.SyscallConn(); err != nil || !tcpfd.Prepared(rc) {
		return nil
	}
	fl, err := tcpfd.NewListener(tl)
	if err != nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing.Load() {
		fl.Close()
		return nil
	}
	f.fdl = fl
	return fl
}

// loopFD returns a descriptor of the Listener's socket for an event loop
// to accept on (a duplicate the runtime poller does not watch, which the
// caller closes), or -1 when the listener is not a prepared
// *net.TCPListener.
func (f *Forwarder) loopFD() int {
	tl, ok := f.Listener.(*net.TCPListener)
	if !ok {
		return -1
	}
	rc, err := tl.SyscallConn()
	if err != nil || !tcpfd.Prepared(rc) {
		return -1
	}
	fd, err := tcpfd.Dup(rc)
	if err != nil {
		return -1
	}
	return fd
}

// serveOnLoops is Serve with the accepting done on fd by loops ls, each of
// which serves the clients it accepts (see ConnectOnLoop); the goroutine
// only waits for the end, or for an accept error to back off from.
func (f *Forwarder) serveOnLoops(ctx context.Context, ls []*loop, fd int, maxBackoff time.Duration) error {
	defer unix.Close(fd)
	// The duplicate keeps the socket listening. The Listener's own
	// descriptor is in the runtime's poller, which would wake a thread for
	// every client only to find nobody waiting on it.
	_ = f.Listener.Close() // only ever fails when closed already
	paused := make(chan error, len(ls))
	lls := make([]*loopListener, len(ls))
	nowait := tcpfd.NoWait(ctx)
	// stop takes fd from the first n loops, those it was added to; once it
	// returns no loop touches it.
	stop := func(n int) {
		for i, l := range ls[:n] {
			l.removeListener(lls[i])
		}
		for len(paused) > 0 {
			<-paused // the loops that failed too have let go already
		}
	}
	log := orDiscard(f.Logger)
	var backoff time.Duration
	resumed := time.Now()
	for {
		select {
		case <-f.shutdown:
			return nil
		default:
		}
		for i, l := range ls {
			// A new loopListener each time: a loop may still hold the
			// one it let go of (in a batch of events), and must find it
			// removed.
			lls[i] = &loopListener{fd: fd, f: f, ctx: ctx, nowait: nowait, paused: paused}
			if err := l.addListener(lls[i]); err != nil {
				stop(i) // addListener let go of lls[i] itself
				return err
			}
		}
		select {
		case <-f.shutdown:
			stop(len(ls))
			return nil
		case err := <-paused: // that loop has let go of fd
			stop(len(ls))
			if time.Since(resumed) > maxBackoff {
				backoff = 0 // accepted meanwhile: start over
			}
			if stopped, ferr := f.pause(log, err, &backoff, maxBackoff); ferr != nil || stopped {
				return ferr
			}
			resumed = time.Now()
		}
	}
}

// pause waits out the next backoff (doubled from *backoff, at most
// maxBackoff) after accept error err; it returns err when err is not
// temporary, and stopped when Shutdown or Close came first.
func (f *Forwarder) pause(log *slog.Logger, err error, backoff *time.Duration, maxBackoff time.Duration) (stopped bool, fatal error) {
	if !temporaryAcceptError(err) {
		return false, err
	}
	*backoff = min(max(2**backoff, 5*time.Millisecond), maxBackoff)
	log.Warn("accept failed; backing off", "listener", f.Listener.Addr().String(), "err", err, "backoff", *backoff)
	t := time.NewTimer(*backoff)
	defer t.Stop()
	select {
	case <-t.C:
		return false, nil
	case <-f.shutdown:
		return true, nil
	}
}

// acceptedOnLoop connects and serves a client accepted by loop l, on l's
// goroutine (see ConnectOnLoop).
func (f *Forwarder) acceptedOnLoop(l *loop, ll *loopListener, c *tcpfd.Conn) {
	if !f.admit(f.shard(l)) {
		_ = c.Close() // refused during shutdown: nothing more to do with it
		return
	}
	t, err := f.Connect(ll.nowait, c)
	if errors.Is(err, tcpfd.ErrWouldBlock) {
		go f.handle(ll.ctx, c)
		return
	}
	f.start(l, true, c, t, err)
}

// temporaryAcceptError reports errors after which accepting may succeed
// again: descriptor or memory exhaustion and clients that went away.
func temporaryAcceptError(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EPROTO, syscall.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// killer is a flow the Forwarder tracks: on goroutines (*flow) or on an
// event loop (*loopFlow).
type killer interface{ kill(how closeMode) }

func (f *Forwarder) handle(ctx context.Context, c net.Conn) {
	t, err := f.Connect(ctx, c)
	f.start(pickLoop(), false, c, t, err)
}

// start serves the flow of client c to t, the outcome of Connect (err):
// on loop l when there is one and both are TCP connections, else on the
// calling goroutine, or on a new one when inline (the caller is l's
// goroutine, which must not block). f.wg was added for the flow; its Done
// comes when the flow has ended.
func (f *Forwarder) start(l *loop, inline bool, c net.Conn, t Target, err error) {
	if err != nil {
		Reset(c)
		if f.Refused != nil {
			f.Refused(c, err)
		}
		f.wg.Done()
		return
	}
	sh := f.shard(l)
	sh.mu.Lock()
	if f.closing.Load() {
		sh.mu.Unlock()
		closeConn(c, closeRST)
		closeConn(t.Conn, closeRST)
		if t.Done != nil {
			t.Done(Result{Aborted: true})
		}
		f.wg.Done()
		return
	}
	if l != nil && loopable(c, t.Conn) {
		cfd, bfd, err := detachPair(c, t.Conn)
		if err != nil {
			sh.mu.Unlock()
			if t.Done != nil {
				t.Done(Result{Err: err})
			}
			f.wg.Done()
			return
		}
		// sh.mu is held until the flow is tracked, so that an end that
		// comes at once finds it.
		var lf *loopFlow
		lf = l.add(cfd, bfd, t.Pipe, func(res Result) {
			sh.mu.Lock() // before reading lf, which start writes under it
			sh.untrackLocked(lf, t.Key)
			sh.mu.Unlock()
			if t.Done != nil {
				t.Done(res)
			}
			f.wg.Done()
		})
		sh.track(lf, t.Key)
		sh.mu.Unlock()
		return
	}
	fl := &flow{client: c, backend: t.Conn}
	sh.track(fl, t.Key)
	sh.mu.Unlock()
	run := func() {
		defer f.wg.Done()
		res := fl.run(t.Pipe)
		sh.untrack(fl, t.Key)
		if t.Done != nil {
			t.Done(res)
		}
	}
	if inline {
		go run()
		return
	}
	run()
}

// track records a flow; s.mu is held.
func (s *flowShard) track(fl killer, key string) {
	s.flows[fl] = key
	s.perKey[key]++
}

func (s *flowShard) untrack(fl killer, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.untrackLocked(fl, key)
}

func (s *flowShard) untrackLocked(fl killer, key string) {
	if _, ok := s.flows[fl]; !ok {
		return
	}
	delete(s.flows, fl)
	if s.perKey[key]--; s.perKey[key] == 0 {
		delete(s.perKey, key)
	}
}

// flowsWhere returns the tracked flows whose backend key passes keep.
func (f *Forwarder) flowsWhere(keep func(key string) bool) []killer {
	var fls []killer
	for i := range f.shards {
		s := &f.shards[i]
		s.mu.Lock()
		for fl, k := range s.flows {
			if keep(k) {
				fls = append(fls, fl)
			}
		}
		s.mu.Unlock()
	}
	return fls
}

// Active returns the number of established flows.
func (f *Forwarder) Active() int {
	f.init()
	n := 0
	for i := range f.shards {
		s := &f.shards[i]
		s.mu.Lock()
		n += len(s.flows)
		s.mu.Unlock()
	}
	return n
}

// ActiveTo returns the number of established flows to backend key.
func (f *Forwarder) ActiveTo(key string) int {
	f.init()
	n := 0
	for i := range f.shards {
		s := &f.shards[i]
		s.mu.Lock()
		n += s.perKey[key]
		s.mu.Unlock()
	}
	return n
}

// CloseTo ends every established flow to backend key, with RST when reset
// is true (else FIN), and returns how many it closed. Flows connected
// afterwards are not affected.
func (f *Forwarder) CloseTo(key string, reset bool) int {
	f.init()
	how := closeFIN
	if reset {
		how = closeRST
	}
	victims := f.flowsWhere(func(k string) bool { return k == key })
	for _, fl := range victims {
		fl.kill(how)
	}
	return len(victims)
}

// Shutdown stops accepting (closes the listener) and waits for the
// established flows to finish. When ctx ends first, the remaining flows are
// reset and Shutdown returns ctx.Err() after they are gone.
func (f *Forwarder) Shutdown(ctx context.Context) error {
	f.stopAccepting()
	done := make(chan struct{})
	go func() {
		f.waitAll()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		f.killAll()
		<-done
		return ctx.Err()
	}
}

// Close stops accepting, resets every established flow and waits until
// all of the Forwarder's goroutines have returned.
func (f *Forwarder) Close() error {
	f.stopAccepting()
	f.killAll()
	f.waitAll()
	return nil
}

func (f *Forwarder) stopAccepting() {
	f.init()
	f.once.Do(func() {
		f.mu.Lock()
		f.closing.Store(true)
		close(f.shutdown)
		fdl := f.fdl
		f.mu.Unlock()
		for i := range f.shards {
			// A client admitted or a flow tracked under this lock
			// before is seen by killAll and waitAll; one after sees
			// closing.
			f.shards[i].mu.Lock()
			f.shards[i].mu.Unlock() //nolint:staticcheck // an empty critical section: the barrier
		}
		_ = f.Listener.Close() // ends Serve; an error means it was closed already
		if fdl != nil {
			_ = fdl.Close() // the duplicate Serve accepts on; it never fails twice
		}
	})
}

func (f *Forwarder) killAll() {
	for _, fl := range f.flowsWhere(func(string) bool { return true }) {
		fl.kill(closeRST)
	}
}

// waitAll waits for the accept loop (if Serve was called) and every flow.
func (f *Forwarder) waitAll() {
	f.gate.wait()
	f.wg.Wait()
}

// loopable reports whether a flow between a and b can run on an event
// loop: both are TCP connections on descriptors it can take.
func loopable(a, b net.Conn) bool { return isTCP(a) && isTCP(b) }

// detachPair takes the descriptors of two TCP connections for an event
// loop; the connections are closed. On error both connections are closed
// with RST.
func detachPair(a, b net.Conn) (int, int, error) {
	fa, err := detach(a)
	if err != nil {
		Reset(a)
		Reset(b)
		return -1, -1, err
	}
	fb, err := detach(b)
	if err != nil {
		closeFD(fa, closeRST)
		Reset(b)
		return -1, -1, err
	}
	return fa, fb, nil
}

// detach returns a descriptor of c's socket that no poller watches and
// closes c.
func detach(c net.Conn) (int, error) {
	if tc, ok := c.(*tcpfd.Conn); ok {
		return tc.Detach()
	}
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd, err := tcpfd.Dup(rc)
	if err != nil {
		return -1, err
	}
	_ = c.Close() // deregisters and closes the original; the duplicate keeps the socket
	return nfd, nil
}
