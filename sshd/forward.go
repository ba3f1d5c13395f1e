package sshd

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// dialTimeout bounds a direct-tcpip dial.
const dialTimeout = 10 * time.Second

// serveDirectTCPIP serves ssh -L and ssh -J: it dials the requested address
// through Config.Dial (from inside the instance) and joins the channel and
// the connection.
func (s *Server) serveDirectTCPIP(ctx context.Context, ci *connInfo, nch ssh.NewChannel) {
	var m struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if ssh.Unmarshal(nch.ExtraData(), &m) != nil || m.Port > 65535 {
		_ = nch.Reject(ssh.ConnectionFailed, "malformed direct-tcpip request")
		return
	}
	if s.cfg.Dial == nil {
		_ = nch.Reject(ssh.Prohibited, "TCP forwarding is disabled on this server")
		return
	}
	addr := net.JoinHostPort(m.Host, strconv.Itoa(int(m.Port)))
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	conn, err := s.cfg.Dial(dctx, "tcp", addr)
	cancel()
	if err != nil {
		ci.log.Info("ssh direct-tcpip dial failed", "addr", addr, "err", err)
		_ = nch.Reject(ssh.ConnectionFailed, "connect to "+addr+" failed: "+err.Error())
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		conn.Close()
		return
	}
	ci.log.Debug("ssh direct-tcpip opened", "addr", addr)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ssh.DiscardRequests(reqs)
	}()
	join(ctx, ch, conn)
	wg.Wait()
}

// join copies both ways, passing half-closes on, and closes both sides
// when both directions are done, when one fails, or when ctx is done.
func join(ctx context.Context, ch ssh.Channel, conn net.Conn) {
	closeBoth := func() {
		ch.Close()
		conn.Close()
	}
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	defer closeBoth()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if _, err := io.Copy(conn, ch); err != nil {
			closeBoth()
			return
		}
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}()
	go func() {
		defer wg.Done()
		if _, err := io.Copy(ch, conn); err != nil {
			closeBoth()
			return
		}
		_ = ch.CloseWrite()
	}()
	wg.Wait()
}
