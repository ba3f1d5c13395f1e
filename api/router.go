package api

import (
	"io"
	"net/http"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
)

// router is an http.ServeMux whose patterns are ARM paths (see routes.go).
//
// ARM compares the fixed segments of a path — keywords, provider namespaces,
// resource types, actions — case-insensitively, and clients send
// "resourcegroups" or "Microsoft.compute". Before the mux matches, the router
// rewrites every fixed segment it knows to the spelling of the patterns;
// names (the segments in between) keep the client's spelling. Where the mux
// would answer plain text, the router answers ARM errors: 405
// MethodNotAllowed when another method has a route, 400 InvalidResourceType
// for a resource type without routes, 404 InvalidRequestUri otherwise.
type router struct {
	mux   *http.ServeMux
	words map[string]string // lower-case fixed segment -> spelling in the patterns
	types map[string]bool   // lower-case resource types that have routes
}

func newRouter() *router {
	return &router{mux: http.NewServeMux(), words: map[string]string{}, types: map[string]bool{}}
}

// handle registers h for pattern ("METHOD /path/{wildcard}/...").
func (rt *router) handle(pattern string, h func(*request)) {
	method, path, _ := strings.Cut(pattern, " ")
	segs := splitPath(path)
	for i, seg := range segs {
		if !fixedSegment(segs, i) || strings.HasPrefix(seg, "{") {
			continue
		}
		if prev, ok := rt.words[strings.ToLower(seg)]; ok && prev != seg {
			panic("api: route " + pattern + " spells " + seg + ", another route " + prev)
		}
		rt.words[strings.ToLower(seg)] = seg
	}
	if typ := resourceType(segs); typ != "" && !strings.Contains(typ, "{") {
		rt.types[strings.ToLower(typ)] = true
	}
	rt.mux.HandleFunc(method+" "+path, func(w http.ResponseWriter, r *http.Request) {
		req, e := newRequest(w, r)
		if e != nil {
			writeErr(w, e)
			return
		}
		h(req)
	})
}

// ServeHTTP routes r, whose path has passed the checks of Server.ServeHTTP.
func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	segs := splitPath(r.URL.Path)
	for i, seg := range segs {
		if seg == "." || seg == ".." {
			notFoundPath(w, r)
			return
		}
		if fixedSegment(segs, i) {
			if canon, ok := rt.words[strings.ToLower(seg)]; ok {
				segs[i] = canon
			}
		}
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path, u.RawPath = "/"+strings.Join(segs, "/"), ""
	r2.URL = &u
	if _, pattern := rt.mux.Handler(r2); pattern != "" {
		rt.mux.ServeHTTP(w, r2)
		return
	}
	// A resource (not a list) in a resource group, of a type without routes.
	if len(segs) >= 8 && segs[2] == "resourceGroups" && segs[4] == "providers" {
		if typ := strings.ToLower(resourceType(segs)); !rt.types[typ] {
			writeErr(w, unservedType(typ))
			return
		}
	}
	if allow := rt.allowed(r2); len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeErr(w, arm.Errorf(405, "MethodNotAllowed", r.URL.Path, "%s is not supported on %s.", r.Method, r.URL.Path))
		return
	}
	notFoundPath(w, r)
}

func unservedType(typ string) *arm.Error {
	return arm.Errorf(400, "InvalidResourceType", typ,
		"The resource type '%s' is not served by this emulator. Served: virtual networks, public IPs, load balancers, network interfaces, network security groups, virtual machines, scale sets, storage accounts, autoscale settings, deployments.", typ)
}

// allowed lists the methods that have a route for r's path.
func (rt *router) allowed(r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodPost} {
		probe := new(http.Request)
		*probe = *r
		probe.Method = m
		if _, pattern := rt.mux.Handler(probe); pattern != "" {
			out = append(out, m)
		}
	}
	return out
}

func notFoundPath(w http.ResponseWriter, r *http.Request) {
	writeErr(w, arm.Errorf(404, "InvalidRequestUri", r.URL.Path, "No API at %s %s.", r.Method, r.URL.Path))
}

func splitPath(p string) []string {
	return strings.FieldsFunc(p, func(c rune) bool { return c == '/' })
}

// fixedSegment reports whether segs[i] is a keyword, namespace, type or
// action rather than a name: subscriptions/{sub}/resourceGroups/{rg} alternate
// from the start, and after "providers" come the namespace, then types and
// names alternating, then an optional action.
func fixedSegment(segs []string, i int) bool {
	for p := 0; p < i; p += 2 {
		if strings.EqualFold(segs[p], "providers") {
			return i == p+1 || (i-p)%2 == 0
		}
	}
	return i%2 == 0
}

// resourceType is the type of the resource a path names or lists
// (Microsoft.Network/virtualNetworks/subnets); "" for paths above providers.
func resourceType(segs []string) string {
	for p := 0; p < len(segs); p += 2 {
		if !strings.EqualFold(segs[p], "providers") {
			continue
		}
		if p+2 >= len(segs) {
			return ""
		}
		typ := segs[p+1]
		for i := p + 2; i+1 < len(segs) || i == p+2; i += 2 {
			typ += "/" + segs[i]
		}
		return typ
	}
	return ""
}

// request is one routed ARM request.
type request struct {
	w     http.ResponseWriter
	r     *http.Request
	sub   string
	group string   // "" at subscription scope
	ns    string   // provider namespace, "" above providers
	rest  []string // segments after the namespace: type, name, type, name, ..., [action]
	body  []byte
}

func newRequest(w http.ResponseWriter, r *http.Request) (*request, *arm.Error) {
	req := &request{w: w, r: r, sub: r.PathValue("sub"), group: r.PathValue("rg")}
	segs := splitPath(r.URL.Path)
	for p := 2; p+1 < len(segs); p += 2 {
		if segs[p] == "providers" {
			req.ns, req.rest = segs[p+1], segs[p+2:]
			break
		}
	}
	if r.Body != nil && (r.Method == http.MethodPut || r.Method == http.MethodPatch || r.Method == http.MethodPost) {
		b, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
		if err != nil {
			return nil, arm.Errorf(400, "InvalidRequestContent", "", "Could not read the request body: %v.", err)
		}
		if len(b) > MaxBody {
			return nil, arm.Errorf(413, "RequestEntityTooLarge", "", "The request body is larger than %d bytes.", MaxBody)
		}
		req.body = b
	}
	return req, nil
}

// id builds the resource id of the first n type/name pairs of the path.
func (req *request) id(n int) arm.ID {
	id := arm.ID{Subscription: req.sub, ResourceGroup: req.group, Namespace: req.ns}
	for i := 0; i < 2*n && i+1 < len(req.rest); i += 2 {
		id.Types = append(id.Types, req.rest[i])
		id.Names = append(id.Names, req.rest[i+1])
	}
	return id
}
