package webapp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Handler returns the app's HTTP handler for computer name and instance id.
func Handler(name, instanceID string) http.Handler {
	body := []byte(fmt.Sprintf("Hello from %s (instance %s)\n", name, instanceID))
	bodyLen := strconv.Itoa(len(body))
	ok := []byte("ok\n")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b []byte
		switch r.URL.Path {
		case "/":
			b = body
		case "/health":
			b = ok
		default:
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h["Content-Type"] = []string{"text/plain; charset=utf-8"}
		if len(b) == len(body) {
			h["Content-Length"] = []string{bodyLen}
		} else {
			h["Content-Length"] = []string{"3"}
		}
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(b) // the client went away; nothing to do
	})
}

// Serve answers on ln until ctx is done, then shuts down gracefully (one
// second for requests in flight). It returns nil after ctx ends.
func Serve(ctx context.Context, ln net.Listener, name, instanceID string) error {
	srv := &http.Server{
		Handler:           Handler(name, instanceID),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("webapp: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close() // after a failed graceful shutdown: force; Serve reports below
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("webapp: serve on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Run listens on addr (e.g. ":80") and serves until ctx is done.
func Run(ctx context.Context, addr, name, instanceID string) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("webapp: listen on %s: %w", addr, err)
	}
	return Serve(ctx, ln, name, instanceID)
}
