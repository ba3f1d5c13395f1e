package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"syscall"

	mdns "github.com/miekg/dns"
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
	// readBuffer holds any UDP datagram.
	readBuffer = 65535
)

// udpLoop serves one UDP socket; it is used by one goroutine only.
type udpLoop struct {
	s     *Server
	zone  *zone             // the snapshot the cache belongs to
	cache map[string][]byte // request after its ID -> packed reply
	bytes int               // size of keys and replies in cache
	out   []byte            // reply being written
}

func newUDPLoop(s *Server) *udpLoop {
	return &udpLoop{s: s, cache: map[string][]byte{}, out: make([]byte, 0, mdns.MaxMsgSize)}
}

// handle returns the reply to the datagram req, nil for none. The reply
// is valid until the next call.
func (u *udpLoop) handle(req []byte) []byte {
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
		u.out = append(u.out[:0], cached...)
		copy(u.out, req[:2])
		return u.out
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
	return reply
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

// serveUDP answers queries on pc until it is closed.
func (s *Server) serveUDP(pc net.PacketConn) error {
	u := newUDPLoop(s)
	buf := make([]byte, readBuffer)
	uc, fast := pc.(*net.UDPConn)
	for {
		var (
			n    int
			addr netip.AddrPort
			from net.Addr
			err  error
		)
		if fast {
			n, addr, err = uc.ReadFromUDPAddrPort(buf)
		} else {
			n, from, err = pc.ReadFrom(buf)
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return err
			}
			continue // e.g. ECONNREFUSED reported for an earlier reply
		}
		reply := u.handle(buf[:n])
		if reply == nil {
			continue
		}
		// An error means the client is gone; nothing to do.
		if fast {
			_, _ = uc.WriteToUDPAddrPort(reply, addr)
		} else {
			_, _ = pc.WriteTo(reply, from)
		}
	}
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
// the process may use.
func udpSockets() int { return max(1, runtime.GOMAXPROCS(0)) }
