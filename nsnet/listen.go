package nsnet

import (
	"context"
	"fmt"
	"net"

	"github.com/vmss-emulator/vmss/tcpfd"
)

// ListenTCP listens on a TCP address (for example "168.63.129.16:53" or
// "10.0.0.4:80") inside the namespace at nsPath ("" = the process
// namespace). The listener stays in that namespace for its whole life and
// may be used from any goroutine. Close it when done: an open socket keeps
// its namespace alive after the namespace's name is removed.
//
// The socket is plain TCP, not the MPTCP socket Go's listeners use by
// default, with TCP_NODELAY and TCP_INQ set before it listens, so every
// accepted socket inherits them (package proxy accepts without setting
// options per connection; TCP_INQ changes nothing for read(2)).
func ListenTCP(ctx context.Context, nsPath, addr string) (*net.TCPListener, error) {
	var l net.Listener
	err := Do(nsPath, func() (err error) {
		lc := net.ListenConfig{Control: tcpfd.ListenControl}
		lc.SetMultipathTCP(false)
		l, err = lc.Listen(ctx, "tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen tcp %s in network namespace %q: %w", addr, nsPath, err)
	}
	return l.(*net.TCPListener), nil
}

// ListenUDP is ListenTCP for UDP.
func ListenUDP(ctx context.Context, nsPath, addr string) (*net.UDPConn, error) {
	var c net.PacketConn
	err := Do(nsPath, func() (err error) {
		c, err = new(net.ListenConfig).ListenPacket(ctx, "udp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen udp %s in network namespace %q: %w", addr, nsPath, err)
	}
	return c.(*net.UDPConn), nil
}
