package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"syscall"

	mdns "github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/vmss-emulator/vmss/nsnet"
)

// UDP is served by a read loop per socket that answers in place, without a
// goroutine or a message struct per query: a reply is a pure function of
// the zone snapshot and of the request's bytes after its ID, so each loop
// keeps the packed replies of the current snapshot keyed by those bytes
// and answers a repeated question by copying the packed reply and patching
// its ID. A change of the records swaps the snapshot, which empties the
// cache on the next query. The key is the exact request (flags, name as
// cased, type, class, EDNS record), so a reply never differs from what the
// full path would pack, byte for byte: a question asked in another case
// is another entry (name compression is case-sensitive).

const (
	// maxCachedRequest is the longest request whose reply is cached.
	maxCachedRequest = 512
	// maxCacheBytes bounds a loop's cache (keys and replies); when full
	// it starts again empty.
	maxCacheBytes = 2 << 20
	// readBuffer is the most of a request that is read; a longer one is
	// read cut (miekg/dns's server reads 512 bytes).
	readBuffer = 4096
	// batch is how many datagrams a system call reads or writes at most.
	batch = 32
)

// udpLoop serves one UDP socket; it is used by one goroutine only.
type udpLoop struct {
	s     *Server
	zone  *zone             // the snapshot the cache belongs to
	cache map[string][]byte // request after its ID -> packed reply
	bytes int               // size of keys and replies in cache
}

func newUDPLoop(s *Server) *udpLoop {
	return &udpLoop{s: s, cache: map[string][]byte{}}
}

// handle appends the reply to the datagram req to dst and returns it; nil
// for no reply. The reply never shares memory with the cache.
func (u *udpLoop) handle(dst, req []byte) []byte {
	if len(req) < 12 {
		return nil // not even a header: no reply (any reply helps amplification)
	}
	z := u.s.zone.Load()
	if z != u.zone {
		u.zone = z
		clear(u.cache)
		u.bytes = 0
	}
	key := req[2:]
	if cached, ok := u.cache[string(key)]; ok {
		dst = append(dst, cached...)
		copy(dst, req[:2])
		return dst
	}
	reply, cacheable := u.s.udpReply(z, req)
	if reply == nil {
		return nil
	}
	if cacheable && len(req) <= maxCachedRequest {
		if u.bytes+len(key)+len(reply) > maxCacheBytes {
			clear(u.cache)
			u.bytes = 0
		}
		u.cache[string(key)] = reply
		u.bytes += len(key) + len(reply)
	}
	return append(dst, reply...)
}

// udpReply is the full path for a UDP request: it does what miekg/dns's
// server does before and after the handler (accept or reject the header,
// unpack, answer, truncate to the client's UDP size, pack). cacheable is
// false for replies to requests that were rejected.
func (s *Server) udpReply(z *zone, req []byte) (reply []byte, cacheable bool) {
	dh := mdns.Header{
		Id:      binary.BigEndian.Uint16(req[0:]),
		Bits:    binary.BigEndian.Uint16(req[2:]),
		Qdcount: binary.BigEndian.Uint16(req[4:]),
		Ancount: binary.BigEndian.Uint16(req[6:]),
		Nscount: binary.BigEndian.Uint16(req[8:]),
		Arcount: binary.BigEndian.Uint16(req[10:]),
	}
	action := mdns.DefaultMsgAcceptFunc(dh)
	r := new(mdns.Msg)
	if action == mdns.MsgAccept {
		if err := r.Unpack(req); err != nil {
			action = mdns.MsgReject
		}
	}
	var m *mdns.Msg
	switch action {
	case mdns.MsgAccept:
		m = s.reply(z, r, true)
		cacheable = true
	case mdns.MsgReject, mdns.MsgRejectNotImplemented:
		// A header-only FORMERR or NOTIMP, as miekg/dns's server sends.
		m = headerMsg(dh)
		opcode := m.Opcode
		m.SetRcodeFormatError(m)
		if action == mdns.MsgRejectNotImplemented {
			m.Opcode = opcode
			m.Rcode = mdns.RcodeNotImplemented
		}
	default:
		return nil, false // a response: ignored
	}
	packed, err := m.Pack()
	if err != nil {
		return nil, false
	}
	return packed, cacheable
}

// headerMsg is a message with dh's header and no sections.
func headerMsg(dh mdns.Header) *mdns.Msg {
	m := new(mdns.Msg)
	m.Id = dh.Id
	m.Response = dh.Bits&(1<<15) != 0
	m.Opcode = int(dh.Bits>>11) & 0xF
	m.Authoritative = dh.Bits&(1<<10) != 0
	m.Truncated = dh.Bits&(1<<9) != 0
	m.RecursionDesired = dh.Bits&(1<<8) != 0
	m.RecursionAvailable = dh.Bits&(1<<7) != 0
	m.AuthenticatedData = dh.Bits&(1<<5) != 0
	m.CheckingDisabled = dh.Bits&(1<<4) != 0
	m.Rcode = int(dh.Bits & 0xF)
	return m
}

// serveUDP answers queries on pc until it is closed. A UDP socket is read
// and written in batches (recvmmsg, sendmmsg): whatever has arrived is read
// at once and answered with one system call.
func (s *Server) serveUDP(pc net.PacketConn) error {
	u := newUDPLoop(s)
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return s.serveUDPOneByOne(u, pc)
	}
	p := ipv4.NewPacketConn(uc)
	in := make([]ipv4.Message, batch)
	out := make([]ipv4.Message, batch)
	replies := make([][]byte, batch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, readBuffer)}
		out[i].Buffers = make([][]byte, 1)
		replies[i] = make([]byte, 0, 512)
	}
	for {
		n, err := p.ReadBatch(in, 0)
		if err != nil {
			if stop, err := readFailed(err); stop {
				return err
			}
			continue
		}
		k := 0
		for i := range n {
			reply := u.handle(replies[i][:0], in[i].Buffers[0][:in[i].N])
			if reply == nil {
				continue
			}
			replies[i] = reply[:0] // its own buffer, perhaps grown
			out[k].Buffers[0] = reply
			out[k].Addr = in[i].Addr
			k++
		}
		for sent := 0; sent < k; {
			m, err := p.WriteBatch(out[sent:k], 0)
			if err != nil {
				// The client of out[sent] is gone (or its reply cannot
				// be sent): skip it; nothing else to do.
				m = max(m, 1)
			}
			sent += m
		}
	}
}

// serveUDPOneByOne serves a PacketConn that is not a UDP socket.
func (s *Server) serveUDPOneByOne(u *udpLoop, pc net.PacketConn) error {
	buf := make([]byte, readBuffer)
	var out []byte
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if stop, err := readFailed(err); stop {
				return err
			}
			continue
		}
		if reply := u.handle(out[:0], buf[:n]); reply != nil {
			out = reply[:0]
			_, _ = pc.WriteTo(reply, from) // an error means the client is gone
		}
	}
}

// readFailed says whether a read error ends the loop, and with what: a
// closed socket ends it without error; errors about earlier replies
// (ECONNREFUSED from an ICMP error) do not end it.
func readFailed(err error) (bool, error) {
	if errors.Is(err, net.ErrClosed) {
		return true, nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true, err
	}
	return false, nil
}

// listenUDP opens n UDP sockets on addr inside the namespace at nsPath,
// with SO_REUSEPORT so that the kernel spreads clients over them.
func listenUDP(ctx context.Context, nsPath, addr string, n int) ([]net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	var pcs []net.PacketConn
	err := nsnet.Do(nsPath, func() error {
		for range n {
			pc, err := lc.ListenPacket(ctx, "udp", addr)
			if err != nil {
				return err
			}
			pcs = append(pcs, pc)
			addr = pc.LocalAddr().String() // the same port for all, if addr asked for any
		}
		return nil
	})
	if err != nil {
		for _, pc := range pcs {
			pc.Close()
		}
		return nil, fmt.Errorf("listen udp %s in network namespace %q: %w", addr, nsPath, err)
	}
	return pcs, nil
}

// udpSockets is how many UDP sockets ListenAndServe opens: one per CPU
// the process may use (GOMAXPROCS, which the daemon sets one above the
// cores for the load balancer's loops: proxy.SetLoopProcs).
func udpSockets() int { return max(1, min(runtime.GOMAXPROCS(0), runtime.NumCPU())) }
