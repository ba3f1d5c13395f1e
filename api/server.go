package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
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
	Operations(ctx context.Context, id arm.ID) (any, error)
	Pending(key string) (bool, error)
}

// Server is the API server. Store and Runtime are required.
type Server struct {
	Store    *model.Store
	Runtime  Runtime
	Deployer Deployer
	Logger   *slog.Logger

	ops sync.Map // operation id -> *operation
}

type operation struct {
	ID      string
	Key     string // resource the operation acts on (lower-cased id)
	Seq     int64  // state sequence after the change
	Delete  bool
	Started time.Time
	mu      sync.Mutex
	ended   time.Time
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
	_ = os.Remove(path)
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
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// ServeHTTP routes an ARM request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &statusWriter{ResponseWriter: w}
	s.route(rw, r)
	s.log().Debug("api", "method", r.Method, "path", r.URL.Path, "status", rw.status, "took", time.Since(start))
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// request is a parsed ARM path.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	sub    string
	group  string   // "" at subscription scope
	ns     string   // provider namespace
	rest   []string // segments after the namespace
	body   []byte
	action string // trailing verb after a resource (odd segment count), "" otherwise
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	parts := strings.FieldsFunc(r.URL.Path, func(c rune) bool { return c == '/' })
	if len(parts) < 2 || !strings.EqualFold(parts[0], "subscriptions") {
		writeErr(w, arm.Errorf(404, "InvalidRequestUri", r.URL.Path, "The request URI %s is not an ARM path; paths start with /subscriptions/{subscriptionId}.", r.URL.Path))
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		writeErr(w, arm.Errorf(400, "MissingApiVersionParameter", "api-version",
			"The api-version query parameter (?api-version=) is required for all requests."))
		return
	}
	req := &request{w: w, r: r, sub: parts[1]}
	if r.Body != nil && (r.Method == http.MethodPut || r.Method == http.MethodPatch || r.Method == http.MethodPost) {
		b, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
		if err != nil {
			writeErr(w, arm.Errorf(400, "InvalidRequestContent", "", "Could not read the request body: %v.", err))
			return
		}
		if len(b) > MaxBody {
			writeErr(w, arm.Errorf(413, "RequestEntityTooLarge", "", "The request body is larger than %d bytes.", MaxBody))
			return
		}
		req.body = b
	}
	cfg := s.config()
	if !strings.EqualFold(req.sub, cfg.Subscription) {
		writeErr(w, arm.Errorf(404, "SubscriptionNotFound", req.sub,
			"The subscription '%s' could not be found. This emulator serves subscription %s.", req.sub, cfg.Subscription))
		return
	}
	rest := parts[2:]
	switch {
	case len(rest) == 0:
		s.getSubscription(req)
		return
	case strings.EqualFold(rest[0], "providers"):
		s.routeSubscriptionProviders(req, rest[1:])
		return
	case strings.EqualFold(rest[0], "resourceGroups"):
	default:
		notFoundPath(req)
		return
	}
	rest = rest[1:]
	if len(rest) == 0 {
		s.listGroups(req)
		return
	}
	req.group = rest[0]
	rest = rest[1:]
	if len(rest) == 0 {
		s.group(req)
		return
	}
	if len(rest) == 1 && strings.EqualFold(rest[0], "resources") {
		s.listGroupResources(req)
		return
	}
	if !strings.EqualFold(rest[0], "providers") || len(rest) < 3 {
		notFoundPath(req)
		return
	}
	req.ns = rest[1]
	req.rest = rest[2:]
	s.routeResource(req)
}

func notFoundPath(req *request) {
	writeErr(req.w, arm.Errorf(404, "InvalidRequestUri", req.r.URL.Path, "No API at %s %s.", req.r.Method, req.r.URL.Path))
}

func (s *Server) config() model.Config {
	var cfg model.Config
	s.Store.View(func(st *model.State) { cfg = st.Config() })
	return cfg
}

// id builds the resource id of the first n type/name pairs of rest.
func (req *request) id(n int) arm.ID {
	id := arm.ID{Subscription: req.sub, ResourceGroup: req.group, Namespace: req.ns}
	for i := 0; i < 2*n && i+1 < len(req.rest); i += 2 {
		id.Types = append(id.Types, req.rest[i])
		id.Names = append(id.Names, req.rest[i+1])
	}
	return id
}

// fullType is the type of the resource path in rest, e.g. microsoft.compute/virtualmachinescalesets/virtualmachines.
func (req *request) fullType(pairs int) string {
	t := req.ns
	for i := 0; i < 2*pairs && i < len(req.rest); i += 2 {
		t += "/" + req.rest[i]
	}
	return strings.ToLower(t)
}

func (s *Server) routeResource(req *request) {
	n := len(req.rest)
	if n == 1 {
		if req.fullType(1) == "microsoft.resources/deployments" && req.group != "" {
			s.listDeployments(req)
			return
		}
		s.listType(req, req.fullType(1))
		return
	}
	pairs := n / 2
	if n%2 == 1 {
		req.action = req.rest[n-1]
	}
	typ := req.fullType(pairs)
	switch typ {
	case "microsoft.compute/virtualmachinescalesets":
		s.scaleSet(req)
	case "microsoft.compute/virtualmachinescalesets/virtualmachines":
		s.scaleSetVM(req)
	case "microsoft.compute/virtualmachinescalesets/extensions":
		s.scaleSetExtension(req)
	case "microsoft.compute/virtualmachines":
		s.vm(req)
	case "microsoft.network/virtualnetworks", "microsoft.network/publicipaddresses", "microsoft.network/loadbalancers", "microsoft.network/networkinterfaces":
		s.network(req, typ)
	case "microsoft.network/virtualnetworks/subnets":
		s.subnet(req)
	case "microsoft.network/loadbalancers/frontendipconfigurations", "microsoft.network/loadbalancers/backendaddresspools",
		"microsoft.network/loadbalancers/loadbalancingrules", "microsoft.network/loadbalancers/probes",
		"microsoft.network/loadbalancers/inboundnatrules", "microsoft.network/loadbalancers/inboundnatpools":
		s.lbChild(req)
	case "microsoft.resources/deployments":
		s.deployment(req)
	default:
		if genericTypes[typ] {
			s.generic(req)
			return
		}
		writeErr(req.w, arm.Errorf(400, "InvalidResourceType", typ,
			"The resource type '%s' is not served by this emulator. Served: virtual networks, public IPs, load balancers, network interfaces, network security groups, virtual machines, scale sets, storage accounts, autoscale settings, deployments.", typ))
	}
}

// genericTypes are stored without being acted on.
var genericTypes = map[string]bool{
	"microsoft.network/networksecuritygroups": true,
	"microsoft.storage/storageaccounts":       true,
	"microsoft.insights/autoscalesettings":    true,
	"microsoft.compute/availabilitysets":      true,
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
	writeJSON(req.w, map[bool]int{true: 201, false: 200}[created], out)
}

// startOp records a long-running operation and sets its headers.
func (s *Server) startOp(req *request, key string, seq int64, del bool) {
	op := &operation{ID: newOpID(), Key: key, Seq: seq, Delete: del, Started: time.Now()}
	s.ops.Store(op.ID, op)
	loc := s.config().Location
	u := fmt.Sprintf("http://%s/subscriptions/%s/providers/Microsoft.Compute/locations/%s/operations/%s?api-version=2024-03-01",
		hostOf(req.r), req.sub, loc, op.ID)
	req.w.Header().Set("Azure-AsyncOperation", u)
	req.w.Header().Set("Location", u+"&monitor=true")
	req.w.Header().Set("Retry-After", "1")
}

func hostOf(r *http.Request) string {
	if r.Host == "" {
		return "localhost"
	}
	return r.Host
}

// opStatus answers GET .../locations/{loc}/operations/{id}.
func (s *Server) opStatus(req *request, opID string) {
	v, ok := s.ops.Load(opID)
	if !ok {
		writeErr(req.w, arm.Errorf(404, "OperationNotFound", opID, "No operation %s (operations are kept while the daemon runs).", opID))
		return
	}
	op := v.(*operation)
	status, errBody := "InProgress", (*arm.Error)(nil)
	if s.Runtime.Applied() >= op.Seq {
		pending, err := s.pending(op.Key)
		if !pending {
			status = "Succeeded"
			if err != nil {
				status = "Failed"
				errBody = &arm.Error{Code: "OperationFailed", Message: err.Error(), Target: op.Key}
				var ae *arm.Error
				if errors.As(err, &ae) {
					errBody = ae
				}
			}
		}
	}
	body := map[string]any{
		"name":      op.ID,
		"status":    status,
		"startTime": op.Started.UTC().Format(time.RFC3339Nano),
	}
	if status != "InProgress" {
		op.mu.Lock()
		if op.ended.IsZero() {
			op.ended = time.Now()
		}
		body["endTime"] = op.ended.UTC().Format(time.RFC3339Nano)
		op.mu.Unlock()
	}
	if errBody != nil {
		body["error"] = errBody
	}
	writeJSON(req.w, 200, body)
}

func (s *Server) pending(key string) (bool, error) {
	if strings.Contains(key, "/microsoft.resources/deployments/") && s.Deployer != nil {
		return s.Deployer.Pending(key)
	}
	return s.Runtime.Pending(key)
}

func (s *Server) routeSubscriptionProviders(req *request, rest []string) {
	// /subscriptions/{sub}/providers/{ns}/locations/{loc}/operations/{id}
	if len(rest) == 5 && strings.EqualFold(rest[1], "locations") && (strings.EqualFold(rest[3], "operations") || strings.EqualFold(rest[3], "operationResults")) {
		s.opStatus(req, rest[4])
		return
	}
	if len(rest) == 2 && req.r.Method == http.MethodGet {
		req.ns = rest[0]
		req.rest = rest[1:]
		s.listType(req, strings.ToLower(rest[0]+"/"+rest[1]))
		return
	}
	if len(rest) == 0 && req.r.Method == http.MethodGet {
		writeJSON(req.w, 200, map[string]any{"value": providers()})
		return
	}
	notFoundPath(req)
}

func providers() []map[string]any {
	var out []map[string]any
	for ns, types := range map[string][]string{
		"Microsoft.Compute":   {"virtualMachineScaleSets", "virtualMachines", "availabilitySets"},
		"Microsoft.Network":   {"virtualNetworks", "publicIPAddresses", "loadBalancers", "networkInterfaces", "networkSecurityGroups"},
		"Microsoft.Storage":   {"storageAccounts"},
		"Microsoft.Insights":  {"autoscaleSettings"},
		"Microsoft.Resources": {"deployments", "resourceGroups"},
	} {
		var rts []map[string]any
		for _, t := range types {
			rts = append(rts, map[string]any{"resourceType": t, "apiVersions": []string{"2024-03-01", "2023-09-01", "2016-03-30"}})
		}
		out = append(out, map[string]any{"namespace": ns, "registrationState": "Registered", "resourceTypes": rts})
	}
	return out
}

func (s *Server) getSubscription(req *request) {
	if req.r.Method != http.MethodGet {
		methodNotAllowed(req)
		return
	}
	cfg := s.config()
	writeJSON(req.w, 200, map[string]any{
		"id":             "/subscriptions/" + cfg.Subscription,
		"subscriptionId": cfg.Subscription,
		"displayName":    "vmss emulator",
		"state":          "Enabled",
		"tenantId":       "00000000-0000-0000-0000-000000000000",
	})
}

func methodNotAllowed(req *request) {
	writeErr(req.w, arm.Errorf(405, "MethodNotAllowed", req.r.URL.Path, "%s is not supported on %s.", req.r.Method, req.r.URL.Path))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeErr(w http.ResponseWriter, e *arm.Error) {
	status := e.Status
	if status == 0 {
		status = 400
	}
	writeJSON(w, status, arm.Body{Error: e})
}
