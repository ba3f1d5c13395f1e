package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultUDPIdle is the UDP flow idle timeout when none is given: Azure's
// default of four minutes.
const DefaultUDPIdle = 4 * time.Minute

// UDPTarget is where UDPConnect sends one client's datagrams.
type UDPTarget struct {
	// Key names the backend for tracking (ActiveTo, CloseTo).
	Key string
	// Conn is a connected datagram socket to the backend. Required.
	Conn net.Conn
	// IdleTimeout expires the flow after this long without a datagram in
	// either direction. Zero means DefaultUDPIdle.
	IdleTimeout time.Duration
	// Done, when set, is called once the flow has ended with the datagram
	// byte counts (up is client→backend).
	Done func(up, down int64)
}

// UDPConnectFunc chooses and dials a backend for a new client flow. An
// error drops the datagram (the next one tries again).
type UDPConnectFunc func(ctx context.Context, client netip.AddrPort) (UDPTarget, error)

// UDPForwarder relays datagrams arriving on Conn to per-client backend
// flows and the replies back to the client from Conn's address. Conn and
// Connect are required.
type UDPForwarder struct {
	Conn    net.PacketConn
	Connect UDPConnectFunc
	// Logger receives errors. nil discards.
	Logger *slog.Logger

	mu      sync.Mutex
	flows   map[netip.AddrPort]*udpFlow
	closing bool
	wg      sync.WaitGroup
	once    sync.Once
	gate    serveGate
}

type udpFlow struct {
	client   netip.AddrPort
	t        UDPTarget
	last     atomic.Int64
	up, down atomic.Int64
	once     sync.Once
}

func (f *UDPForwarder) init() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.flows == nil {
		f.flows = map[netip.AddrPort]*udpFlow{}
	}
}

// Serve relays datagrams until Close, ctx done, or a socket error.
func (f *UDPForwarder) Serve(ctx context.Context) error {
	f.init()
	if err := f.gate.begin("UDPForwarder"); err != nil {
		return err
	}
	defer f.gate.end()
	stop := context.AfterFunc(ctx, func() { _ = f.Conn.Close() })
	defer stop()
	log := orDiscard(f.Logger)
	buf := make([]byte, 64*1024)
	for {
		n, addr, err := f.Conn.ReadFrom(buf)
		if err != nil {
			f.mu.Lock()
			closing := f.closing
			f.mu.Unlock()
			if closing || ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		client := addrPortOf(addr)
		if !client.IsValid() {
			continue
		}
		for attempt := 0; attempt < 2; attempt++ {
			fl, err := f.flowFor(ctx, client)
			if err != nil {
				log.Debug("udp flow refused", "client", client.String(), "err", err)
				break
			}
			if _, err := fl.t.Conn.Write(buf[:n]); err != nil {
				f.expire(fl) // backend socket gone: drop the flow, try once more
				continue
			}
			fl.up.Add(int64(n))
			fl.last.Store(now())
			break
		}
	}
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

func (f *UDPForwarder) flowFor(ctx context.Context, client netip.AddrPort) (*udpFlow, error) {
	f.mu.Lock()
	if fl := f.flows[client]; fl != nil {
		f.mu.Unlock()
		return fl, nil
	}
	f.mu.Unlock()
	t, err := f.Connect(ctx, client)
	if err != nil {
		return nil, err
	}
	if t.IdleTimeout <= 0 {
		t.IdleTimeout = DefaultUDPIdle
	}
	fl := &udpFlow{client: client, t: t}
	fl.last.Store(now())
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		_ = t.Conn.Close() // the new flow is refused during shutdown
		return nil, net.ErrClosed
	}
	f.flows[client] = fl
	f.wg.Add(1)
	f.mu.Unlock()
	go f.replies(fl)
	return fl, nil
}

// replies copies backend→client datagrams and expires the flow when idle.
func (f *UDPForwarder) replies(fl *udpFlow) {
	defer f.wg.Done()
	defer f.expire(fl)
	buf := make([]byte, 64*1024)
	slice := fl.t.IdleTimeout / 4
	dst := net.UDPAddrFromAddrPort(fl.client)
	for {
		_ = fl.t.Conn.SetReadDeadline(time.Now().Add(slice)) // fails only once closed; Read then says so
		n, err := fl.t.Conn.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue // e.g. ECONNREFUSED from an ICMP port unreachable: keep the flow
			}
			if time.Duration(now()-fl.last.Load()) >= fl.t.IdleTimeout {
				return
			}
			continue
		}
		fl.last.Store(now())
		if _, err := f.Conn.WriteTo(buf[:n], dst); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		fl.down.Add(int64(n))
	}
}

// expire removes fl from the table and closes its backend socket once.
func (f *UDPForwarder) expire(fl *udpFlow) {
	fl.once.Do(func() {
		f.mu.Lock()
		if f.flows[fl.client] == fl {
			delete(f.flows, fl.client)
		}
		f.mu.Unlock()
		_ = fl.t.Conn.Close() // the flow is over; nothing to do about a failed close
		if fl.t.Done != nil {
			fl.t.Done(fl.up.Load(), fl.down.Load())
		}
	})
}

// Active returns the number of live flows.
func (f *UDPForwarder) Active() int {
	f.init()
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.flows)
}

// ActiveTo returns the number of live flows to backend key.
func (f *UDPForwarder) ActiveTo(key string) int {
	f.init()
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, fl := range f.flows {
		if fl.t.Key == key {
			n++
		}
	}
	return n
}

// CloseTo ends every flow to backend key and returns how many.
func (f *UDPForwarder) CloseTo(key string) int {
	f.init()
	f.mu.Lock()
	var victims []*udpFlow
	for _, fl := range f.flows {
		if fl.t.Key == key {
			victims = append(victims, fl)
		}
	}
	f.mu.Unlock()
	for _, fl := range victims {
		f.expire(fl)
	}
	return len(victims)
}

// Close closes the socket, ends every flow and waits for all goroutines.
func (f *UDPForwarder) Close() error {
	f.init()
	f.once.Do(func() {
		f.mu.Lock()
		f.closing = true
		f.mu.Unlock()
		_ = f.Conn.Close() // ends Serve; an error means it was closed already
	})
	f.gate.wait()
	f.mu.Lock()
	victims := make([]*udpFlow, 0, len(f.flows))
	for _, fl := range f.flows {
		victims = append(victims, fl)
	}
	f.mu.Unlock()
	for _, fl := range victims {
		f.expire(fl)
	}
	f.wg.Wait()
	return nil
}
