package proxy

import (
	"context"
	"log/slog"
)

// Frontend is one public socket, TCP or UDP, served in a goroutine of its
// own. Open it, Start it, Close it; lb rules and nat mappings are built on
// it.
type Frontend struct {
	TCP     *Forwarder    // set for "tcp"
	UDP     *UDPForwarder // set for "udp"
	done    chan struct{}
	started bool
}

// FrontendSpec says how to open a Frontend.
type FrontendSpec struct {
	Network string // "tcp" or "udp"
	Addr    string // ip:port
	Owner   string // for errors, e.g. "load-balancing rule http"
	// Listen / ListenPacket open the socket; nil means the host namespace.
	Listen       ListenFunc
	ListenPacket ListenPacketFunc
	ConnectTCP   ConnectFunc // required for tcp
	// ConnectOnLoop: ConnectTCP honours tcpfd.NoWait (Forwarder.ConnectOnLoop).
	ConnectOnLoop bool
	ConnectUDP    UDPConnectFunc // required for udp
	Logger        *slog.Logger
}

// OpenFrontend opens the socket; nothing is served until Start. A port in
// use gives an *AddrInUseError.
func OpenFrontend(ctx context.Context, s FrontendSpec) (*Frontend, error) {
	f := &Frontend{done: make(chan struct{})}
	if s.Network == "udp" {
		listen := s.ListenPacket
		if listen == nil {
			listen = HostListenPacket
		}
		pc, err := listen(ctx, "udp", s.Addr)
		if err != nil {
			return nil, ClassifyListenError("udp", s.Addr, s.Owner, err)
		}
		f.UDP = &UDPForwarder{Conn: pc, Connect: s.ConnectUDP, Logger: s.Logger}
		return f, nil
	}
	listen := s.Listen
	if listen == nil {
		listen = HostListen
	}
	ln, err := listen(ctx, "tcp", s.Addr)
	if err != nil {
		return nil, ClassifyListenError("tcp", s.Addr, s.Owner, err)
	}
	f.TCP = &Forwarder{Listener: ln, Connect: s.ConnectTCP, ConnectOnLoop: s.ConnectOnLoop, Logger: s.Logger}
	return f, nil
}

// Start serves the socket until Close.
func (f *Frontend) Start() {
	f.started = true
	go func() {
		defer close(f.done)
		// Serve returns nil after Close; any other error means the socket
		// stopped accepting and the frontend is dead until reapplied.
		if f.TCP != nil {
			if err := f.TCP.Serve(context.Background()); err != nil {
				orDiscard(f.TCP.Logger).Error("frontend stopped accepting", "listener", f.TCP.Listener.Addr().String(), "err", err)
			}
		} else if err := f.UDP.Serve(context.Background()); err != nil {
			orDiscard(f.UDP.Logger).Error("frontend stopped reading", "socket", f.UDP.Conn.LocalAddr().String(), "err", err)
		}
	}()
}

// Close closes the socket, resets its flows and waits for its goroutines.
func (f *Frontend) Close() {
	// Close only reports a second close: nothing to act on.
	if f.TCP != nil {
		_ = f.TCP.Close()
	} else {
		_ = f.UDP.Close()
	}
	if f.started {
		<-f.done
	}
}

// Active is the number of established flows.
func (f *Frontend) Active() int {
	if f.TCP != nil {
		return f.TCP.Active()
	}
	return f.UDP.Active()
}

// CloseTo resets every flow to backend key and returns how many.
func (f *Frontend) CloseTo(key string) int {
	if f.TCP != nil {
		return f.TCP.CloseTo(key, true)
	}
	return f.UDP.CloseTo(key)
}
