package sshd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("sshd: server closed")

// Server is the SSH server of one instance. It is safe for concurrent use.
type Server struct {
	cfg  Config
	log  *slog.Logger
	auth atomic.Pointer[authState]

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // running Serve calls
}

// New validates cfg and returns a Server that is not serving yet.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	s.auth.Store(newAuthState(cfg.Auth, cfg.Home))
	s.cfg.Auth = Auth{} // the live credentials are in s.auth only
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// SetAuth replaces the credentials. Connections accepted afterwards use the
// new ones; established sessions are left alone. An invalid a changes
// nothing and is reported.
func (s *Server) SetAuth(a Auth) error {
	if err := a.validate(); err != nil {
		return err
	}
	s.auth.Store(newAuthState(a, s.cfg.Home))
	return nil
}

// Serve accepts SSH connections on ln until ctx is done, Close is called or
// ln is closed. It then closes ln, ends the connections it accepted (their
// sessions' processes are sent SIGHUP, and SIGKILL 2s later) and returns
// once they are gone. It returns nil in those cases, ErrServerClosed when called after
// Close, and the accept error otherwise. Serve may be called for several
// listeners at once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopOnClose := context.AfterFunc(s.ctx, cancel)
	defer stopOnClose()
	context.AfterFunc(ctx, func() { ln.Close() })

	var conns sync.WaitGroup
	defer conns.Wait()
	defer cancel() // runs before conns.Wait: ends the connections

	backoff := time.Duration(0)
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("ssh accept failed, retrying", "addr", ln.Addr().String(), "err", err, "retry_in", backoff)
				sleepCtx(ctx, backoff)
				continue
			}
			return fmt.Errorf("sshd: accept on %s: %w", ln.Addr(), err)
		}
		backoff = 0
		conns.Add(1)
		go func() {
			defer conns.Done()
			s.serveConn(ctx, nc)
		}()
	}
}

// isTemporary reports accept errors worth retrying (descriptor exhaustion,
// aborted handshakes).
func isTemporary(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) ||
		errors.Is(err, syscall.ENOMEM)
}

// Close stops every Serve call, closes their listeners, ends every
// connection and session, and waits until all of it has stopped. Later
// calls return nil.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// connInfo is what sessions need to know about their connection.
type connInfo struct {
	user   string
	home   string
	remote net.Addr
	local  net.Addr
	log    *slog.Logger
}

// serveConn runs one connection from handshake to close.
func (s *Server) serveConn(ctx context.Context, nc net.Conn) {
	defer nc.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Closing the socket is what unblocks the handshake and every channel.
	context.AfterFunc(ctx, func() { nc.Close() })

	src, remote := s.clientSource(nc)
	done, ok := s.cfg.Limiter.admit(src, s.log)
	if !ok {
		return
	}
	defer done()
	if s.cfg.AuthTimeout > 0 {
		_ = nc.SetDeadline(time.Now().Add(s.cfg.AuthTimeout))
	}
	a := s.auth.Load()
	att := &attempts{src: src}
	conf := s.sshConfig(ctx, a, att)
	if conf == nil {
		s.log.Error("ssh connection refused: Config.HostKeys returned no keys", "remote", remote)
		return
	}
	sc, chans, reqs, err := ssh.NewServerConn(nc, conf)
	done()
	if err != nil {
		if att.passwords == 0 && att.keys > 0 {
			s.cfg.Limiter.fail(src, s.log)
		}
		s.logHandshakeError(remote, err)
		return
	}
	_ = nc.SetDeadline(time.Time{})
	defer sc.Close()
	logLogin(s.log, sc)

	ci := &connInfo{
		user:   sc.User(),
		home:   a.home,
		remote: sc.RemoteAddr(),
		local:  sc.LocalAddr(),
		log:    s.log.With("remote", remote, "user", sc.User()),
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // runs before wg.Wait: ends sessions and forwards

	wg.Add(1)
	go func() {
		defer wg.Done()
		answerGlobalRequests(reqs)
	}()
	if s.cfg.ClientAliveInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			clientAlive(ctx, sc, s.cfg.ClientAliveInterval, s.cfg.ClientAliveCountMax, ci.log, &wg)
		}()
	}
	s.serveChannels(ctx, ci, chans, &wg)
	ci.log.Debug("ssh connection closed")
}

// clientSource answers the address the connection is from (the one
// Config.ClientAddr names, if any) and how to name it in logs.
func (s *Server) clientSource(nc net.Conn) (src netip.Addr, remote string) {
	remote = nc.RemoteAddr().String()
	src = peerAddr(nc)
	if s.cfg.ClientAddr != nil {
		if a := s.cfg.ClientAddr(nc); a.IsValid() && a.Unmap() != src {
			src = a.Unmap()
			remote = src.String() + " via " + remote
		}
	}
	return src, remote
}

// serveChannels accepts the connection's session and direct-tcpip channels
// within the configured limits and serves each in a goroutine counted by wg,
// until the connection closes.
func (s *Server) serveChannels(ctx context.Context, ci *connInfo, chans <-chan ssh.NewChannel, wg *sync.WaitGroup) {
	var sessions, channels atomic.Int32
	for nch := range chans {
		typ := nch.ChannelType()
		if typ != "session" && typ != "direct-tcpip" {
			_ = nch.Reject(ssh.UnknownChannelType, "channel type "+typ+" is not supported")
			continue
		}
		if n := s.cfg.MaxChannels; n > 0 && int(channels.Load()) >= n {
			ci.log.Info("ssh channel refused: too many channels on the connection", "type", typ, "max_channels", n)
			_ = nch.Reject(ssh.ResourceShortage, fmt.Sprintf("too many channels open on this connection (at most %d)", n))
			continue
		}
		if n := s.cfg.MaxSessions; typ == "session" && n > 0 && int(sessions.Load()) >= n {
			ci.log.Info("ssh session refused: too many sessions on the connection", "max_sessions", n)
			_ = nch.Reject(ssh.ResourceShortage, fmt.Sprintf("too many sessions open on this connection (at most %d)", n))
			continue
		}
		channels.Add(1)
		switch typ {
		case "session":
			sessions.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer channels.Add(-1)
				defer sessions.Add(-1)
				s.serveSession(ctx, ci, nch)
			}()
		case "direct-tcpip":
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer channels.Add(-1)
				s.serveDirectTCPIP(ctx, ci, nch)
			}()
		}
	}
}

// logHandshakeError logs a failed handshake: failed authentication at Info,
// everything else (scanners, timeouts, resets) at Debug.
func (s *Server) logHandshakeError(remote string, err error) {
	var authErr *ssh.ServerAuthError
	if errors.As(err, &authErr) {
		s.log.Info("ssh connection closed before authentication succeeded", "remote", remote, "err", err)
		return
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		s.log.Info("ssh connection timed out before authentication", "remote", remote,
			"timeout", s.cfg.AuthTimeout)
		return
	}
	s.log.Debug("ssh handshake failed", "remote", remote, "err", err)
}

// answerGlobalRequests answers every global request with failure:
// keepalive@openssh.com gets its answer that way (as from OpenSSH), and
// remote forwarding (tcpip-forward) is not offered.
func answerGlobalRequests(reqs <-chan *ssh.Request) {
	for req := range reqs {
		if req.WantReply {
			_ = req.Reply(false, nil)
		}
	}
}

// clientAlive sends a keepalive every interval and closes the connection
// once countMax requests in a row stay unanswered. The goroutine doing the
// blocking send is tracked by wg.
func clientAlive(ctx context.Context, sc *ssh.ServerConn, interval time.Duration, countMax int, log *slog.Logger, wg *sync.WaitGroup) {
	t := time.NewTicker(interval)
	defer t.Stop()
	answered := make(chan error, 1)
	inflight, missed := false, 0
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-answered:
			if err != nil {
				return // connection gone
			}
			inflight, missed = false, 0
		case <-t.C:
			if inflight {
				missed++
				if missed >= countMax {
					log.Info("ssh client stopped answering keepalives, closing", "unanswered", missed)
					sc.Close()
					return
				}
				continue
			}
			inflight = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, err := sc.SendRequest("keepalive@openssh.com", true, nil)
				answered <- err
			}()
		}
	}
}
