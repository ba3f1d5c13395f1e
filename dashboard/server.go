package dashboard

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vmss-emulator/vmss/arm"
)

//go:embed assets
var assets embed.FS

// Config configures a Server.
type Config struct {
	// ARM is the ARM API; the dashboard reads and acts through it.
	ARM          http.Handler
	Subscription string
	// ReadOnly refuses every action.
	ReadOnly bool
	// Token is required on every action; a random one when empty.
	Token string
	// Debounce lets a burst of changes coalesce into one update; default 50ms.
	Debounce time.Duration
	// DataPlane is how often, while a page is open, the load balancers' probe
	// states and counters are read again (they change without a model
	// change); default 1s.
	DataPlane time.Duration
	// SampleInterval is how often the monitor samples instances' metrics
	// (the CPU charts' resolution); default 15s.
	SampleInterval time.Duration
	// InstanceInterval, when set, answers how often each instance is
	// sampled (the monitor's InstanceInterval: longer than SampleInterval
	// when a round samples some of many instances); each instance's latest
	// CPU figure is its average over three of those.
	InstanceInterval func() time.Duration
	Logger           *slog.Logger
}

// Server serves the page, its live updates and its actions.
type Server struct {
	cfg    Config
	token  string
	notify chan struct{}

	mu       sync.Mutex
	snap     *Snapshot
	payload  []byte // the snapshot as JSON
	shows    []byte // what the snapshot shows, as JSON (see shown)
	activity []Activity
	seq      int64
	subs     map[chan []byte]struct{}

	// buildMu serialises builds and guards what they carry over: the
	// autoscale events read so far and each scale set's latest decision.
	buildMu   sync.Mutex
	asSince   time.Time
	asSeen    map[string]bool
	asReason  map[string]string   // autoscale setting → reason of its last logged evaluation
	decisions map[string]Decision // lower-case scale set id → latest autoscale decision
}

// maxActivity bounds the activity log.
const maxActivity = 300

// New returns a Server; call Run to keep it up to date.
func New(cfg Config) (*Server, error) {
	if cfg.ARM == nil {
		return nil, fmt.Errorf("dashboard: no ARM handler")
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = 50 * time.Millisecond
	}
	if cfg.DataPlane <= 0 {
		cfg.DataPlane = time.Second
	}
	if cfg.SampleInterval <= 0 {
		cfg.SampleInterval = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	tok := cfg.Token
	if tok == "" {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("dashboard token: %w", err)
		}
		tok = hex.EncodeToString(b)
	}
	return &Server{cfg: cfg, token: tok, notify: make(chan struct{}, 1), subs: map[chan []byte]struct{}{},
		asSeen: map[string]bool{}, asReason: map[string]string{}, decisions: map[string]Decision{}}, nil
}

// Token is the per-start token actions must carry.
func (s *Server) Token() string { return s.token }

// Notify says something changed (the model, the reconciler's status, the
// data plane); an update follows within Debounce.
func (s *Server) Notify() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Run rebuilds the view on every change until ctx ends, and sends it to the
// open pages when it differs from the last one.
func (s *Server) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.DataPlane)
	defer t.Stop()
	s.refresh(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.notify:
			time.Sleep(s.cfg.Debounce)
		case <-t.C:
			if s.viewers() == 0 {
				continue
			}
		}
		s.refresh(ctx)
	}
}

func (s *Server) viewers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// refresh builds the view and publishes it when it changed.
func (s *Server) refresh(ctx context.Context) {
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	snap, err := s.build(ctx)
	if err != nil {
		s.cfg.Logger.Warn("dashboard: reading the state failed", "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.activity = append(s.activity, diff(s.snap, snap, snap.Time)...)
	s.activity = append(s.activity, snap.autoscale...)
	sort.SliceStable(s.activity, func(i, j int) bool { return s.activity[i].Time.Before(s.activity[j].Time) })
	if n := len(s.activity); n > maxActivity {
		s.activity = append([]Activity(nil), s.activity[n-maxActivity:]...)
	}
	snap.Activity = s.activity
	shows := shown(snap)
	if s.snap != nil && bytes.Equal(s.shows, shows) {
		return
	}
	s.seq++
	snap.Seq = s.seq
	b, err := json.Marshal(snap)
	if err != nil {
		s.cfg.Logger.Warn("dashboard: encoding the view failed", "err", err)
		return
	}
	s.snap, s.payload, s.shows = snap, b, shows
	for c := range s.subs {
		select {
		case c <- b:
		default: // a slow page skips to the next update
			select {
			case <-c:
			default:
			}
			c <- b
		}
	}
}

// shown encodes what a view shows: time, build cost and sequence aside. Two
// views that show the same thing encode alike.
func shown(v *Snapshot) []byte {
	c := *v
	c.Time, c.BuildMS, c.Seq = time.Time{}, 0, 0
	b, _ := json.Marshal(c) // a view always encodes (it is sent as JSON)
	return b
}

// Handler serves the page (/), its assets, the event stream (/events), the
// current view (/api/view) and actions (/api/action).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	sub, _ := fs.Sub(assets, "assets")
	static := http.FileServerFS(sub)
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", static))
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("GET /api/view", s.view)
	mux.HandleFunc("GET /api/cpu", s.instanceCPU)
	mux.HandleFunc("POST /api/action", s.action)
	mux.HandleFunc("POST /api/whatif", s.deployment(false))
	mux.HandleFunc("POST /api/deploy", s.deployment(true))
	return s.guard(mux)
}

// guard serves loopback clients asking for a loopback host only (no DNS
// rebinding), and never lets the page be framed.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackRemote(r.RemoteAddr) {
			http.Error(w, "the dashboard answers loopback clients only", http.StatusForbidden)
			return
		}
		if !loopbackHost(r.Host) {
			http.Error(w, "the dashboard answers for 127.0.0.1, [::1] or localhost only (Host "+r.Host+")", http.StatusForbidden)
			return
		}
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		next.ServeHTTP(w, r)
	})
}

func loopbackRemote(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return false
	}
	return ap.Addr().Unmap().IsLoopback()
}

func loopbackHost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	h = strings.Trim(h, "[]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("assets/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ro := "false"
	if s.cfg.ReadOnly {
		ro = "true"
	}
	b = bytes.Replace(b, []byte("{{TOKEN}}"), []byte(s.token), 1)
	b = bytes.Replace(b, []byte("{{READONLY}}"), []byte(ro), 1)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

func (s *Server) current() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.payload
}

func (s *Server) view(w http.ResponseWriter, r *http.Request) {
	b := s.current()
	if b == nil {
		s.refresh(r.Context())
		b = s.current()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

// events streams the view as server-sent events: the current one, then one
// each time it changes.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	c := make(chan []byte, 1)
	s.mu.Lock()
	s.subs[c] = struct{}{}
	first := s.payload
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, c)
		s.mu.Unlock()
	}()
	if first == nil {
		s.Notify()
	}
	send := func(b []byte) error {
		if _, err := fmt.Fprintf(w, "event: view\ndata: %s\n\n", b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if _, err := io.WriteString(w, "retry: 1000\n\n"); err != nil {
		return
	}
	if first != nil {
		if send(first) != nil {
			return
		}
	} else if rc.Flush() != nil {
		return
	}
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case b := <-c:
			if send(b) != nil {
				return
			}
		case <-keep.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

// Action is a request of the page. Op is one of scale, start, stop,
// restart, reimage, delete, fault-down, fault-up.
type Action struct {
	Op       string `json:"op"`
	ScaleSet string `json:"scaleSet"` // resource id
	Instance string `json:"instance,omitempty"`
	Capacity *int   `json:"capacity,omitempty"`
	FD       *int   `json:"faultDomain,omitempty"`
}

// TokenHeader carries the per-start token on actions.
const TokenHeader = "X-Vmss-Token"

// allowed checks what every request of the page that acts must carry (the
// token, a same-origin Origin, a JSON body), and the read-only flag when
// change is true; it answers the error itself.
func (s *Server) allowed(w http.ResponseWriter, r *http.Request, change bool) bool {
	if change && s.cfg.ReadOnly {
		http.Error(w, "the dashboard is read-only (started with --dashboard-readonly)", http.StatusForbidden)
		return false
	}
	if got := r.Header.Get(TokenHeader); got == "" || got != s.token {
		http.Error(w, "missing or wrong "+TokenHeader+": reload the page (the token changes at every start)", http.StatusForbidden)
		return false
	}
	if o := r.Header.Get("Origin"); o == "" || !sameOrigin(o, r.Host) {
		http.Error(w, "cross-origin action refused (Origin "+o+")", http.StatusForbidden)
		return false
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		http.Error(w, "send the action as application/json", http.StatusUnsupportedMediaType)
		return false
	}
	return true
}

func (s *Server) action(w http.ResponseWriter, r *http.Request) {
	if !s.allowed(w, r, true) {
		return
	}
	var a Action
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&a); err != nil {
		http.Error(w, "bad action: "+err.Error(), http.StatusBadRequest)
		return
	}
	method, path, body, err := s.armCall(a)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	code, out := s.callARM(r.Context(), method, path, body)
	s.cfg.Logger.Info("dashboard action", "op", a.Op, "scaleSet", a.ScaleSet, "instance", a.Instance, "status", code)
	s.Notify()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(out)
}

func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Scheme == "http" && strings.EqualFold(u.Host, host)
}

// armCall maps an action to the ARM call the CLI makes for it.
func (s *Server) armCall(a Action) (method, path string, body any, err error) {
	prefix := "/subscriptions/" + s.cfg.Subscription + "/resourceGroups/"
	if !strings.HasPrefix(strings.ToLower(a.ScaleSet), strings.ToLower(prefix)) ||
		!strings.Contains(strings.ToLower(a.ScaleSet), "/providers/microsoft.compute/virtualmachinescalesets/") {
		return "", "", nil, fmt.Errorf("scaleSet %q: give a scale set's resource id", a.ScaleSet)
	}
	inst := func() ([]string, error) {
		if a.Instance == "" || strings.ContainsAny(a.Instance, "/?#") {
			return nil, fmt.Errorf("%s: give the instance id", a.Op)
		}
		return []string{a.Instance}, nil
	}
	switch a.Op {
	case "scale": // vmss scale
		if a.Capacity == nil || *a.Capacity < 0 {
			return "", "", nil, fmt.Errorf("scale: give a capacity of 0 or more")
		}
		return http.MethodPatch, a.ScaleSet, map[string]any{"sku": map[string]any{"capacity": *a.Capacity}}, nil
	case "start", "stop", "restart", "reimage", "delete": // vmss start|stop|restart|reimage|delete-instances
		ids, err := inst()
		if err != nil {
			return "", "", nil, err
		}
		verb := map[string]string{"start": "start", "stop": "powerOff", "restart": "restart", "reimage": "reimage", "delete": "delete"}[a.Op]
		return http.MethodPost, a.ScaleSet + "/" + verb, map[string]any{"instanceIds": ids}, nil
	case "fault-down", "fault-up": // vmss fault down|up
		if a.FD == nil || *a.FD < 0 {
			return "", "", nil, fmt.Errorf("%s: give the fault domain", a.Op)
		}
		return http.MethodPost, a.ScaleSet + "/injectFault", map[string]any{"faultDomain": *a.FD, "state": strings.TrimPrefix(a.Op, "fault-")}, nil
	}
	return "", "", nil, fmt.Errorf("unknown action %q (scale, start, stop, restart, reimage, delete, fault-down, fault-up)", a.Op)
}

func (s *Server) callARM(ctx context.Context, method, path string, body any) (int, []byte) {
	b, _ := json.Marshal(body)
	req := httptest.NewRequestWithContext(ctx, method, path+"?api-version="+arm.VersionFor(path, APIVersion), bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.cfg.ARM.ServeHTTP(rec, req)
	out := rec.Body.Bytes()
	if len(bytes.TrimSpace(out)) == 0 {
		out = []byte("{}")
	}
	return rec.Code, out
}

// Template is a deployment the page previews (what-if) or starts.
type Template struct {
	Group      string          `json:"resourceGroup"`
	Name       string          `json:"name"`
	Mode       string          `json:"mode,omitempty"` // Incremental (default) or Complete
	Template   json.RawMessage `json:"template"`
	Parameters json.RawMessage `json:"parameters,omitempty"` // {"p":{"value":…}} or a parameters file
}

// deploymentCall maps a template to the ARM call az makes for it:
// POST …/deployments/{name}/whatIf (az deployment group what-if) or PUT
// …/deployments/{name} (az deployment group create).
func (s *Server) deploymentCall(t Template, run bool) (method, path string, body any, err error) {
	var errs []error
	if !validName(t.Group) {
		errs = append(errs, fmt.Errorf("resourceGroup %q: give a resource group name (letters, digits, ._-())", t.Group))
	}
	if !validName(t.Name) {
		errs = append(errs, fmt.Errorf("name %q: give a deployment name (letters, digits, ._-())", t.Name))
	}
	var tpl map[string]any
	if err := json.Unmarshal(t.Template, &tpl); err != nil || tpl == nil {
		errs = append(errs, fmt.Errorf("template: paste or upload an ARM template (a JSON object): %v", err))
	}
	params := map[string]any{}
	if len(bytes.TrimSpace(t.Parameters)) > 0 && string(bytes.TrimSpace(t.Parameters)) != "null" {
		if err := json.Unmarshal(t.Parameters, &params); err != nil {
			errs = append(errs, fmt.Errorf("parameters: give a JSON object ({\"name\": {\"value\": …}} or a parameters file): %v", err))
		} else if inner, ok := params["parameters"].(map[string]any); ok && params["$schema"] != nil {
			params = inner // a parameters file
		}
	}
	mode := t.Mode
	if mode == "" {
		mode = "Incremental"
	}
	if mode != "Incremental" && mode != "Complete" {
		errs = append(errs, fmt.Errorf("mode %q: Incremental or Complete", t.Mode))
	}
	if err := errors.Join(errs...); err != nil {
		return "", "", nil, err
	}
	path = "/subscriptions/" + s.cfg.Subscription + "/resourceGroups/" + t.Group + "/providers/Microsoft.Resources/deployments/" + t.Name
	body = map[string]any{"properties": map[string]any{"mode": mode, "template": tpl, "parameters": params}}
	if run {
		return http.MethodPut, path, body, nil
	}
	return http.MethodPost, path + "/whatIf", body, nil
}

func validName(n string) bool {
	if n == "" || len(n) > 90 {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-()", c)) {
			return false
		}
	}
	return true
}

// deployment answers the page's what-if (run false: changes nothing, allowed
// when read-only) or deployment (run true) of a template.
func (s *Server) deployment(run bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.allowed(w, r, run) {
			return
		}
		var t Template
		if err := json.NewDecoder(io.LimitReader(r.Body, 8<<20)).Decode(&t); err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		method, path, body, err := s.deploymentCall(t, run)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		code, out := s.callARM(r.Context(), method, path, body)
		s.cfg.Logger.Info("dashboard deployment", "whatIf", !run, "group", t.Group, "name", t.Name, "status", code)
		if run {
			s.Notify()
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write(out)
	}
}
