package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// PipeConfig tunes one flow. The zero value copies until both sides finish,
// with no idle timeout.
type PipeConfig struct {
	// IdleTimeout ends the flow when no byte has moved in either direction
	// for this long (Azure idleTimeoutInMinutes). Zero or negative: never.
	// Detection happens between IdleTimeout and 1.25×IdleTimeout after the
	// last byte.
	IdleTimeout time.Duration
	// ResetOnIdle sends RST to both sides when the idle timeout fires
	// (Azure enableTcpReset). When false the flow is dropped silently:
	// neither side is told; the next segment a side sends is answered
	// with a reset by the kernel. Silent drop needs CAP_NET_ADMIN
	// (TCP_REPAIR); without it the sockets are closed with FIN.
	ResetOnIdle bool
	// Progress, when set, is called with byte counts as they become known:
	// when a direction's copy returns (at the end of the flow, and at each
	// idle-check slice when an idle timeout is set). up is client→backend.
	Progress func(up, down int64)
	// QuickAck acknowledges the first QuickAckReads reads of each
	// direction at once (TCP_QUICKACK): a peer that keeps Nagle on during
	// its handshake, as OpenSSH does, otherwise waits for the delayed ACK,
	// 40 ms per round. It costs a setsockopt(2) per read while it lasts.
	QuickAck bool
}

// Result describes a finished flow.
type Result struct {
	Up, Down int64 // bytes client→backend and backend→client
	Idle     bool  // ended by the idle timeout
	Aborted  bool  // ended by Abort (drain end, shutdown, context)
	Err      error // first error other than EOF/close, if any
}

// errIdle marks a direction that observed the idle timeout.
var errIdle = errors.New("idle timeout")

// flow is one proxied connection pair. Abort may be called from any
// goroutine, any number of times.
type flow struct {
	client, backend net.Conn
	last            atomic.Int64 // unix nanos of the last observed progress
	once            sync.Once
	aborted         atomic.Bool  // closed by anyone
	killed          atomic.Bool  // closed from outside (kill)
	finished        atomic.Int32 // directions that have returned
}

// epoch anchors monotonic timestamps: time.Since(epoch) never jumps with
// the wall clock, unlike UnixNano.
var epoch = time.Now()

// now is the monotonic time since epoch.
func now() int64 { return int64(time.Since(epoch)) }

func (f *flow) touch() { f.last.Store(now()) }

func (f *flow) idleFor() time.Duration { return time.Duration(now() - f.last.Load()) }

// kill ends the flow from outside (drain end, shutdown, context).
func (f *flow) kill(how closeMode) {
	f.killed.Store(true)
	f.abort(how)
}

// abort closes both conns. Only the first call acts.
func (f *flow) abort(how closeMode) {
	f.once.Do(func() {
		f.aborted.Store(true)
		closeConn(f.client, how)
		closeConn(f.backend, how)
	})
}

type closeMode int

const (
	closeFIN    closeMode = iota // ordinary close
	closeRST                     // SO_LINGER 0: RST
	closeSilent                  // TCP_REPAIR: nothing on the wire
)

func closeConn(c net.Conn, how closeMode) {
	switch how {
	case closeRST:
		if l, ok := c.(interface{ SetLinger(int) error }); ok {
			_ = l.SetLinger(0) // best effort: without it the close is an ordinary FIN
		}
	case closeSilent:
		setRepair(c)
	}
	_ = c.Close() // the flow is over; nothing to do about a failed close
}

// setRepair puts a TCP socket into repair mode so that close() frees it
// without sending FIN or RST. It needs CAP_NET_ADMIN; on failure the
// socket is left as is (an ordinary close follows).
func setRepair(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	// Best effort: without CAP_NET_ADMIN TCP_REPAIR fails and the close is an ordinary FIN.
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpRepair, 1)
	})
}

const tcpRepair = 19 // TCP_REPAIR from linux/tcp.h

// Reset closes c with an RST (SO_LINGER 0). Use it to refuse a client.
func Reset(c net.Conn) { closeConn(c, closeRST) }

// Pipe copies client→backend and backend→client until both directions
// finish, the idle timeout fires, or ctx is done (then both conns are
// closed with RST). Pipe always closes both conns before it returns.
// With TCP connections (*net.TCPConn, *tcpfd.Conn) on both sides the copy
// uses its own read/write and splice(2) loop.
func Pipe(ctx context.Context, client, backend net.Conn, cfg PipeConfig) Result {
	if l := pickLoop(); l != nil && loopable(client, backend) {
		cfd, bfd, err := detachPair(client, backend)
		if err != nil {
			return Result{Err: err}
		}
		done := make(chan Result, 1)
		fl := l.add(cfd, bfd, cfg, func(r Result) { done <- r })
		stop := context.AfterFunc(ctx, func() { fl.kill(closeRST) })
		defer stop()
		return <-done
	}
	f := &flow{client: client, backend: backend}
	stop := context.AfterFunc(ctx, func() { f.kill(closeRST) })
	defer stop()
	return f.run(cfg)
}

func (f *flow) run(cfg PipeConfig) Result {
	f.touch()
	var (
		res     Result
		downErr error
		wg      sync.WaitGroup
	)
	wg.Go(func() {
		res.Down, downErr = f.copyDir(f.client, f.backend, cfg, false)
	})
	var upErr error
	res.Up, upErr = f.copyDir(f.backend, f.client, cfg, true)
	wg.Wait()
	f.abort(closeFIN) // no-op if already aborted
	res.Aborted = f.killed.Load()
	res.Idle = errors.Is(upErr, errIdle) || errors.Is(downErr, errIdle)
	for _, err := range []error{upErr, downErr} {
		if err != nil && !errors.Is(err, errIdle) && !isClosed(err) && res.Err == nil {
			res.Err = err
		}
	}
	if res.Aborted {
		res.Err = nil
	}
	return res
}

// copyDir moves src→dst. On EOF it half-closes dst; on an error it aborts
// the flow (RST both ways, like an L4 balancer passing a reset through).
func (f *flow) copyDir(dst, src net.Conn, cfg PipeConfig, up bool) (int64, error) {
	n, err := f.copyLoop(dst, src, cfg, up)
	last := f.finished.Add(1) == 2
	switch {
	case err == nil && last:
		// The other direction is done too: the close that follows sends
		// the FIN, one shutdown(2) fewer per flow.
	case err == nil:
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			if cwErr := cw.CloseWrite(); cwErr != nil && !isClosed(cwErr) {
				f.abort(closeRST)
			}
		} else {
			f.abort(closeFIN)
		}
	case errors.Is(err, errIdle):
		if cfg.ResetOnIdle {
			f.abort(closeRST)
		} else {
			f.abort(closeSilent)
		}
	default:
		f.abort(closeRST)
	}
	return n, err
}

func (f *flow) copyLoop(dst, src net.Conn, cfg PipeConfig, up bool) (int64, error) {
	report := func(n int64) {
		if cfg.Progress != nil && n > 0 {
			if up {
				cfg.Progress(n, 0)
			} else {
				cfg.Progress(0, n)
			}
		}
	}
	idle := cfg.IdleTimeout
	slice := idle / 4
	arm := func() error {
		if idle <= 0 {
			return nil
		}
		return src.SetReadDeadline(time.Now().Add(slice))
	}
	// timedOut decides what a read deadline means: the flow is idle, or
	// it is not (re-arm and go on).
	timedOut := func(err error) (idleErr error, again bool) {
		if idle <= 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return err, false
		}
		if f.aborted.Load() {
			return net.ErrClosed, false
		}
		// Idle means no byte moved for the timeout and none is waiting
		// in either socket (bytes that arrived while this process was
		// not scheduled are activity, not idleness).
		if f.idleFor() >= idle && !pending(f.client) && !pending(f.backend) {
			return errIdle, false
		}
		return nil, true
	}
	if err := arm(); err != nil {
		return 0, err
	}
	var total int64
	quickAck := 0
	if cfg.QuickAck {
		quickAck = QuickAckReads
	}
	if sp := newSplicer(dst, src, quickAck); sp != nil && !forceStdCopy {
		onChunk := func(n int) {
			f.touch()
			report(int64(n))
		}
		for {
			n, err, unsupported := sp.session(onChunk)
			total += n
			if unsupported {
				break // the failed call consumed nothing: io.Copy goes on below
			}
			if err == nil {
				return total, nil // EOF
			}
			e, again := timedOut(err)
			if !again {
				return total, e
			}
			if err := arm(); err != nil {
				return total, err
			}
		}
	}
	for {
		n, err := io.Copy(dst, src)
		total += n
		report(n)
		if n > 0 {
			f.touch()
		}
		if err == nil {
			return total, nil
		}
		e, again := timedOut(err)
		if !again {
			return total, e
		}
		if err := arm(); err != nil {
			return total, err
		}
	}
}

// forceStdCopy makes flows use io.Copy (benchmarks compare the two).
var forceStdCopy = false

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// pending reports whether c has unread bytes or a FIN waiting.
func pending(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var waiting bool
	// Control fails only on a closed socket, which then reports "not waiting".
	_ = raw.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		waiting = n > 0 || (n == 0 && err == nil)
	})
	return waiting
}
