package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// MaxBody is the largest request body accepted.
const MaxBody = 8 << 20

// Deployer runs template deployments; nil means deployments are not served.
type Deployer interface {
	// Put validates and starts (or, with whatIf, only plans) a deployment.
	// It answers the deployment resource body.
	Put(ctx context.Context, id arm.ID, body []byte) (any, error)
	Get(ctx context.Context, id arm.ID) (any, error)
	List(ctx context.Context, group string) (any, error)
	WhatIf(ctx context.Context, id arm.ID, body []byte) (any, error)
	// Validate checks a deployment as Put does, without deploying.
	Validate(ctx context.Context, id arm.ID, body []byte) (any, error)
	Operations(ctx context.Context, id arm.ID) (any, error)
	Pending(key string) (bool, error)
}

// Timeouts of the API's connections (defaults of the Server fields).
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultBodyTimeout       = time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
)

// Server is the API server. Store and Runtime are required.
type Server struct {
	Store    *model.Store
	Runtime  Runtime
	Deployer Deployer
	Monitor  Monitor // nil: no metrics or activity log
	Logger   *slog.Logger

	// ReadHeaderTimeout bounds reading a request's headers. Zero:
	// DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// BodyTimeout bounds reading a request's body (at most MaxBody bytes),
	// from the end of the headers. It does not bound the handler: a long
	// run command or a slow answer is not cut. Zero: DefaultBodyTimeout.
	BodyTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that sends no new request.
	// Zero: DefaultIdleTimeout.
	IdleTimeout time.Duration
	// PageSize is how many items a list answers at most; more come with a
	// nextLink (see writePage). Zero: DefaultPageSize.
	PageSize int

	ops        sync.Map // operation id -> *operation
	opsMu      sync.Mutex
	opsN       int       // entries in ops
	lastSweep  time.Time // of ops (see addOp)
	clock      func() time.Time
	routerOnce sync.Once
	router     *router
}

type operation struct {
	ID      string
	Key     string // resource the operation acts on (lower-cased id)
	Seq     int64  // state sequence after the change
	Delete  bool
	Started time.Time
	mu      sync.Mutex
	ended   time.Time
	status  string     // final status once reported (Succeeded, Failed), "" before
	err     *arm.Error // with Failed
}

func (s *Server) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// ListenUnix listens on a unix socket at path, readable and writable by root
// only. A stale socket from a dead daemon is removed; a live one is an error.
func ListenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket directory %s: %w", filepath.Dir(path), err)
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("a vmss daemon already answers on %s: stop it first or use another --socket", path)
	}
	_ = os.Remove(path) // the stale socket of a dead daemon, or none; Listen reports what is in the way
	old := umask(0o177)
	ln, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("restrict %s to root: %w", path, err)
	}
	return ln, nil
}

// Serve answers requests on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// No ReadTimeout or WriteTimeout: they would also bound handlers
	// (net/http cancels a request's context when its connection's read
	// deadline passes). The body's deadline is set per request (serve).
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: orDefault(s.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		IdleTimeout:       orDefault(s.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			s.log().Warn("api: requests still running at shutdown were cut off", "err", err)
		}
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// ServeHTTP answers an ARM request: it checks what every request needs (an
// ARM path, an api-version, this emulator's subscription) and routes it (see
// routes.go).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &statusWriter{ResponseWriter: w}
	defer func() {
		// A bug hit by one request answers 500 (when nothing was written
		// yet) and is logged; the daemon serves on.
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log().Error("internal error", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if rw.status == 0 {
				writeErr(rw, arm.Errorf(500, "InternalServerError", "", "Internal error: %v.", p))
			}
		}
	}()
	s.serve(rw, r)
	s.log().Debug("api", "method", r.Method, "path", r.URL.Path, "status", rw.status, "took", time.Since(start))
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// hasBody reports whether the API reads r's body (see newRequest).
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody &&
		(r.Method == http.MethodPut || r.Method == http.MethodPatch || r.Method == http.MethodPost)
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if hasBody(r) {
		// The body must arrive within BodyTimeout; newRequest lifts the
		// deadline once it has read it, before the handler runs.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(orDefault(s.BodyTimeout, DefaultBodyTimeout)))
	}
	parts := splitPath(r.URL.Path)
	if tenantLevel(parts) {
		if r.URL.Query().Get("api-version") == "" {
			writeErr(w, arm.Errorf(400, "MissingApiVersionParameter", "api-version",
				"The api-version query parameter (?api-version=) is required for all requests."))
			return
		}
		if e := arm.CheckAPIVersion(r.URL.Path, r.URL.Query().Get("api-version"), s.config().Location); e != nil {
			writeErr(w, e)
			return
		}
		s.routerOnce.Do(func() { s.router = s.routes() })
		s.router.ServeHTTP(w, r)
		return
	}
	if len(parts) < 2 || !strings.EqualFold(parts[0], "subscriptions") {
		writeErr(w, arm.Errorf(404, "InvalidRequestUri", r.URL.Path, "The request URI %s is not an ARM path; paths start with /subscriptions/{subscriptionId}.", r.URL.Path))
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		writeErr(w, arm.Errorf(400, "MissingApiVersionParameter", "api-version",
			"The api-version query parameter (?api-version=) is required for all requests."))
		return
	}
	if cfg := s.config(); !strings.EqualFold(parts[1], cfg.Subscription) {
		writeErr(w, arm.Errorf(404, "SubscriptionNotFound", parts[1],
			"The subscription '%s' could not be found. This emulator serves subscription %s.", parts[1], cfg.Subscription))
		return
	} else if e := arm.CheckAPIVersion(r.URL.Path, r.URL.Query().Get("api-version"), cfg.Location); e != nil {
		writeErr(w, e)
		return
	}
	s.routerOnce.Do(func() { s.router = s.routes() })
	s.router.ServeHTTP(w, r)
}

// tenantLevel reports whether a path is above subscriptions: the
// subscription and tenant lists and the tenant's providers.
func tenantLevel(parts []string) bool {
	if len(parts) == 0 {
		return false
	}
	switch strings.ToLower(parts[0]) {
	case "subscriptions", "tenants":
		return len(parts) == 1
	case "providers":
		return true
	}
	return false
}

func (s *Server) config() model.Config {
	var cfg model.Config
	s.Store.View(func(st *model.State) { cfg = st.Config() })
	return cfg
}

// update runs a state change and answers an ARM error for a failure.
func (s *Server) update(req *request, f func(st *model.State) *arm.Error) (int64, bool) {
	var seq int64
	err := s.Store.Update(func(st *model.State) error {
		if e := f(st); e != nil {
			return e
		}
		seq = st.Seq
		return nil
	})
	if err != nil {
		var pe *model.PanicError
		if errors.As(err, &pe) {
			s.log().Error("internal error", "method", req.r.Method, "path", req.r.URL.Path, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
			writeErr(req.w, arm.Errorf(500, "InternalServerError", "", "%v", err))
			return 0, false
		}
		writeErr(req.w, arm.AsError(err))
		return 0, false
	}
	if seq == 0 {
		s.Store.View(func(st *model.State) { seq = st.Seq })
	}
	return seq, true
}

// put applies a create-or-update, starts its long-running operation and
// answers the rendered resource: 201 when it was created, 200 otherwise.
func (s *Server) put(req *request, key string, apply func(st *model.State) (bool, *arm.Error), render func(st *model.State) any) {
	var created bool
	seq, ok := s.update(req, func(st *model.State) *arm.Error {
		c, e := apply(st)
		created = c
		return e
	})
	if !ok {
		return
	}
	s.startOp(req, key, seq, false)
	var out any
	s.Store.View(func(st *model.State) { out = render(st) })
	writeJSON(req.w, createdStatus(created), out)
}

// startOp records a long-running operation and sets its headers.
func (s *Server) startOp(req *request, key string, seq int64, del bool) {
	op := &operation{ID: newOpID(), Key: key, Seq: seq, Delete: del, Started: s.now()}
	s.addOp(op)
	loc := s.config().Location
	u := fmt.Sprintf("%s://%s/subscriptions/%s/providers/Microsoft.Compute/locations/%s/operations/%s?api-version=2024-03-01",
		scheme(req.r), hostOf(req.r), req.sub, loc, op.ID)
	req.w.Header().Set("Azure-AsyncOperation", u)
	req.w.Header().Set("Location", u+"&monitor=true")
	req.w.Header().Set("Retry-After", "1")
}

// scheme is how the client reached the API: https through the HTTPS
// listener, http on the unix socket.
func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

func hostOf(r *http.Request) string {
	if r.Host == "" {
		return "localhost"
	}
	return r.Host
}

func (s *Server) pending(key string) (bool, error) {
	if strings.Contains(key, "/microsoft.resources/deployments/") && s.Deployer != nil {
		return s.Deployer.Pending(key)
	}
	return s.Runtime.Pending(key)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the status is sent; a failed write means the client went away
}

func writeErr(w http.ResponseWriter, e *arm.Error) {
	status := e.Status
	if status == 0 {
		status = 400
	}
	writeJSON(w, status, arm.Body{Error: e})
}

// invalidContent is the error for a body that is not the JSON expected.
func invalidContent(err error) *arm.Error {
	return arm.Errorf(400, "InvalidRequestContent", "", "The request content was invalid and could not be deserialized: %v.", err)
}

// createdStatus is 201 for a created resource, 200 for an updated one.
func createdStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}
