package proxy

import (
	"errors"
	"net"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The flow's own copy loop. Small chunks (requests, responses, handshakes:
// what fits one buffer) go through read(2) and write(2) with a pooled
// 16 KiB buffer; a chunk that fills the buffer switches the direction to
// splice(2), which moves bulk data without copying it through userspace,
// until a splice moves less than a buffer's worth again. For a small
// chunk splice costs more than the copy: two splices with page handling
// against a read and a write of a few hundred bytes (measured: splice was
// 46% of the proxy's CPU under a wrk HTTP load, the copy about half that).
//
// io.Copy between two *net.TCPConn also splices, but it takes a pipe (two
// descriptors) at the start of the copy and keeps it until EOF, so an idle
// flow holds four pipe descriptors on top of its two sockets. This loop
// takes a buffer or a pipe from a shared pool only while bytes are in
// transit: an idle flow costs its two sockets. It also reports each chunk
// as it moves (live byte counters, exact idle tracking) and honours read
// deadlines the same way (RawConn.Read waits through the runtime poller).

const maxSplice = 1 << 20 // bytes per splice(2) call, as the runtime uses

// copyBuf is the size of a pooled copy buffer: a chunk that fills it
// switches its direction to splice.
const copyBuf = 16 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBuf); return &b }}

type splicePipe struct {
	r, w    int
	cleanup runtime.Cleanup
}

var splicePipes = sync.Pool{New: func() any {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil
	}
	_, _ = unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, maxSplice) // a smaller pipe only costs syscalls
	p := &splicePipe{r: fds[0], w: fds[1]}
	p.cleanup = runtime.AddCleanup(p, func(fds [2]int) { unix.Close(fds[0]); unix.Close(fds[1]) }, fds)
	return p
}}

// destroy closes a pipe that may still hold data (it must not be reused).
func (p *splicePipe) destroy() {
	p.cleanup.Stop()
	unix.Close(p.r)
	unix.Close(p.w)
	p.r, p.w = -1, -1
}

// splicer moves bytes src→dst for one direction. Its callbacks are method
// values made once, so the loop does not allocate per chunk.
type splicer struct {
	src, dst syscall.RawConn
	pipe     *splicePipe
	n        int // bytes in the pipe or the buffer
	err      error
	buf      *[]byte // pooled copy buffer while a small chunk is in transit
	off      int     // start of the unwritten bytes in buf
	bulk     bool    // splice (true) or copy (false) the next chunk
	ackLeft  int     // reads of the flow still followed by immediate ACKs
	readFn   func(uintptr) bool
	writeFn  func(uintptr) bool
}

var errNoPipe = errors.New("no pipe")

func newSplicer(dst, src net.Conn) *splicer {
	sd, ok1 := dst.(syscall.Conn)
	ss, ok2 := src.(syscall.Conn)
	if !ok1 || !ok2 {
		return nil
	}
	if _, tcp := dst.(*net.TCPConn); !tcp {
		return nil
	}
	if _, tcp := src.(*net.TCPConn); !tcp {
		return nil
	}
	rd, err1 := sd.SyscallConn()
	rs, err2 := ss.SyscallConn()
	if err1 != nil || err2 != nil {
		return nil
	}
	s := &splicer{src: rs, dst: rd, ackLeft: quickAckReads}
	s.readFn = s.drain
	s.writeFn = s.pump
	return s
}

// drain reads what src has into a pooled buffer, or splices it into a
// pooled pipe in bulk mode. It returns false (wait for readability) on
// EAGAIN, after giving the buffer or pipe back.
func (s *splicer) drain(fd uintptr) bool {
	if !s.bulk {
		return s.recv(fd)
	}
	if s.pipe == nil {
		p, _ := splicePipes.Get().(*splicePipe)
		if p == nil {
			s.err = errNoPipe
			return true
		}
		s.pipe = p
	}
	for {
		n, err := unix.Splice(int(fd), nil, s.pipe.w, nil, maxSplice, unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			splicePipes.Put(s.pipe)
			s.pipe = nil
			return false
		}
		s.n, s.err = int(n), err
		s.quickAck(fd)
		return true
	}
}

// recv reads what src has into a pooled buffer.
func (s *splicer) recv(fd uintptr) bool {
	if s.buf == nil {
		s.buf = copyBufs.Get().(*[]byte)
	}
	for {
		n, err := unix.Read(int(fd), *s.buf)
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			copyBufs.Put(s.buf)
			s.buf = nil
			return false
		}
		s.n, s.off, s.err = max(n, 0), 0, err
		s.quickAck(fd)
		return true
	}
}

// quickAck acknowledges at once while the flow is young: a peer that
// keeps Nagle on during a handshake (OpenSSH does) otherwise waits for
// Linux's delayed ACK, 40 ms per round. The flag is not sticky, so it is
// set after each read that brought bytes.
func (s *splicer) quickAck(fd uintptr) {
	if s.n > 0 && s.ackLeft > 0 {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1) // latency only; a failure changes no data
		s.ackLeft--
	}
}

// quickAckReads is how many reads of each direction of a flow are followed
// by immediate ACKs: enough for the round trips of an SSH or TLS handshake,
// few enough that a long keep-alive flow pays for them only at its start.
const quickAckReads = 16

// pump moves the buffer's or the pipe's content to dst; false waits for
// writability.
func (s *splicer) pump(fd uintptr) bool {
	for s.buf != nil && s.n > 0 {
		n, err := unix.Write(int(fd), (*s.buf)[s.off:s.off+s.n])
		switch err {
		case nil:
			s.n -= n
			s.off += n
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			s.err = err
			return true
		}
	}
	for s.n > 0 {
		n, err := unix.Splice(s.pipe.r, nil, int(fd), nil, s.n, unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
		switch err {
		case nil:
			s.n -= int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			s.err = err
			return true
		}
	}
	return true
}

// chunk moves one burst: it waits until src is readable, splices what is
// there into a pipe and pumps it all to dst. n == 0 with a nil error is
// EOF. unsupported reports that splice cannot be used for this pair and
// nothing was consumed.
func (s *splicer) chunk() (n int, err error, unsupported bool) {
	s.n, s.err = 0, nil
	if err := s.src.Read(s.readFn); err != nil {
		s.release()
		return 0, err, false
	}
	if s.err != nil {
		err := s.err
		s.release()
		if err == unix.EINVAL || err == errNoPipe {
			return 0, err, true
		}
		return 0, wrapSplice(err), false
	}
	n = s.n
	if n == 0 {
		s.release()
		return 0, nil, false
	}
	// A chunk that fills a buffer is bulk: splice the next ones, until a
	// splice moves less than a buffer.
	s.bulk = n >= copyBuf
	werr := s.dst.Write(s.writeFn)
	if werr == nil {
		werr = s.err
	}
	if werr != nil {
		written := n - s.n
		if s.pipe != nil {
			s.pipe.destroy() // it may still hold bytes
			s.pipe = nil
		}
		s.release()
		return written, wrapSplice(werr), false
	}
	s.release()
	return n, nil, false
}

func (s *splicer) release() {
	if s.buf != nil {
		copyBufs.Put(s.buf)
		s.buf = nil
	}
	if s.pipe != nil {
		splicePipes.Put(s.pipe)
		s.pipe = nil
	}
}

func wrapSplice(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return &net.OpError{Op: "splice", Net: "tcp", Err: err}
	}
	return err
}
