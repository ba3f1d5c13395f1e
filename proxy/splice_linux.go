package proxy

import (
	"errors"
	"net"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/vmss-emulator/vmss/tcpfd"
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
//
// A direction runs inside one RawConn.Read of its source for as long as
// bytes keep coming: the read callback reads, writes the chunk to the
// destination and returns "wait" without reading again when the kernel
// said nothing is left. Calling RawConn.Read anew for each chunk would
// clear the poller's readiness first, so every chunk would need one more
// read(2) that finds nothing (EAGAIN) before it could wait safely. What is
// left comes from TCP_INQ: each recvmsg(2) returns the bytes still queued,
// and a non-zero count when the peer's FIN is waiting, so a chunk that
// ended with the FIN is not mistaken for a drained socket. The option is
// set on the listening socket (accepted sockets inherit it); a socket
// without it (a backend's) gets it on its second chunk, so a connection
// of one request and one response does not pay for it.

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
	werr     error
	eof      bool
	buf      *[]byte // pooled copy buffer while a small chunk is in transit
	off      int     // start of the unwritten bytes in buf
	bulk     bool    // splice (true) or copy (false) the next chunk
	inq      int8    // chunks read from src without a TCP_INQ hint: 0, 1 (-1), 2 and it was set (-2)
	ackLeft  int     // reads of the flow still followed by immediate ACKs
	moved    int64   // bytes moved by the current session
	onChunk  func(n int)
	readFn   func(uintptr) bool
	writeFn  func(uintptr) bool
	oob      [32]byte // room for one TCP_CM_INQ control message
}

var errNoPipe = errors.New("no pipe")

// isTCP reports whether c is a TCP connection the splicer can work on.
func isTCP(c net.Conn) bool {
	switch c.(type) {
	case *net.TCPConn, *tcpfd.Conn:
		return true
	}
	return false
}

// newSplicer returns nil unless dst and src are both TCP connections.
// quickAck is how many reads of src are followed by immediate ACKs.
func newSplicer(dst, src net.Conn, quickAck int) *splicer {
	if !isTCP(dst) || !isTCP(src) {
		return nil
	}
	rd, err1 := dst.(syscall.Conn).SyscallConn()
	rs, err2 := src.(syscall.Conn).SyscallConn()
	if err1 != nil || err2 != nil {
		return nil
	}
	s := &splicer{src: rs, dst: rd, ackLeft: quickAck}
	s.readFn = s.step
	s.writeFn = s.pump
	return s
}

// session moves chunks until src reaches EOF (err == nil), an error, or
// its read deadline. onChunk is called with each chunk's size once it is
// written. moved counts the bytes written. unsupported reports that
// splice cannot be used for this pair and the failed call consumed
// nothing. No buffer or pipe is held while the session waits or after it
// returns.
func (s *splicer) session(onChunk func(n int)) (moved int64, err error, unsupported bool) {
	s.moved, s.err, s.eof, s.onChunk = 0, nil, false, onChunk
	rerr := s.src.Read(s.readFn)
	s.release()
	moved = s.moved
	switch {
	case rerr != nil:
		return moved, rerr, false
	case s.err == unix.EINVAL || s.err == errNoPipe:
		return moved, s.err, true
	case s.err != nil:
		return moved, wrapSplice(s.err), false
	}
	return moved, nil, false // EOF
}

// step is the read callback of a session: it moves chunks until src has
// nothing more (false: wait for readability) or the direction ends (true).
func (s *splicer) step(fd uintptr) bool {
	for {
		var drained bool
		if s.bulk {
			if !s.spliceIn(fd) {
				return false
			}
		} else if !s.recv(fd, &drained) {
			return false
		}
		if s.err != nil {
			return true
		}
		n := s.n
		if n == 0 {
			s.eof = true
			return true
		}
		s.quickAck(fd)
		// A chunk that fills a buffer is bulk: splice the next ones, until a
		// splice moves less than a buffer.
		bulk := n >= copyBuf
		s.werr = nil
		werr := s.dst.Write(s.writeFn)
		if werr == nil {
			werr = s.werr
		}
		if werr != nil {
			s.moved += int64(n - s.n)
			if s.pipe != nil {
				s.pipe.destroy() // it may still hold bytes
				s.pipe = nil
			}
			s.err = wrapSplice(werr) // wrapped: a write's EINVAL is not "unsupported"
			return true
		}
		s.moved += int64(n)
		if s.onChunk != nil {
			s.onChunk(n)
		}
		if bulk != s.bulk {
			s.release()
			s.bulk = bulk
		}
		if drained {
			s.release()
			return false
		}
	}
}

// spliceIn splices what src has into a pooled pipe. It returns false
// (wait for readability) on EAGAIN, after giving the pipe back.
func (s *splicer) spliceIn(fd uintptr) bool {
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
			s.release()
			return false
		}
		s.n, s.err = int(n), err
		return true
	}
}

// recv reads what src has into a pooled buffer. It returns false (wait for
// readability) on EAGAIN, after giving the buffer back. drained is set when
// TCP_INQ says nothing (not even a FIN) is left behind the bytes read.
func (s *splicer) recv(fd uintptr, drained *bool) bool {
	if s.buf == nil {
		s.buf = copyBufs.Get().(*[]byte)
	}
	for {
		n, oobn, _, _, err := unix.Recvmsg(int(fd), *s.buf, s.oob[:], 0)
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			s.release()
			return false
		}
		s.n, s.off, s.err = max(n, 0), 0, err
		if err == nil && n > 0 {
			left, ok := inqHint(s.oob[:oobn])
			switch {
			case ok:
				*drained = left == 0
			case s.inq == 0:
				// Not set on this socket (a backend's): the first chunk reads
				// on until EAGAIN or EOF as any reader must; a second one
				// means an exchange of several rounds (keep-alive), where the
				// option saves a read per chunk from now on. A connection of
				// one request and one response never pays the setsockopt.
				s.inq = -1
			case s.inq == -1:
				s.inq = -2
				_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_INQ, 1) // on failure reads go on until EAGAIN
			}
		}
		return true
	}
}

// inqHint parses the TCP_CM_INQ control message of a recvmsg.
func inqHint(oob []byte) (left int32, ok bool) {
	if len(oob) == 0 {
		return 0, false
	}
	h, data, _, err := unix.ParseOneSocketControlMessage(oob)
	if err != nil || h.Level != unix.IPPROTO_TCP || h.Type != unix.TCP_CM_INQ || len(data) < 4 {
		return 0, false
	}
	return int32(uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16 | uint32(data[3])<<24), true
}

// quickAck acknowledges at once while the flow is young: a peer that
// keeps Nagle on during a handshake (OpenSSH does) otherwise waits for
// Linux's delayed ACK, 40 ms per round. The flag is not sticky, so it is
// set after each read that brought bytes.
func (s *splicer) quickAck(fd uintptr) {
	if s.ackLeft > 0 {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1) // latency only; a failure changes no data
		s.ackLeft--
	}
}

// QuickAckReads is how many reads of each direction of a flow are
// followed by immediate ACKs when PipeConfig.QuickAck is set: enough for
// the round trips of an SSH or TLS handshake, few enough that a long
// keep-alive flow pays for them only at its start.
const QuickAckReads = 16

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
			s.werr = err
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
			s.werr = err
			return true
		}
	}
	return true
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
	var oe *net.OpError
	if !errors.As(err, &oe) && errors.As(err, &errno) {
		return &net.OpError{Op: "splice", Net: "tcp", Err: err}
	}
	return err
}
