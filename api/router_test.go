package api

import (
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// serve sends one request to a Server without a socket.
func serve(t *testing.T, srv *Server, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	if !strings.Contains(path, "api-version=") {
		path += "?api-version=" + arm.VersionFor(path, "2024-03-01")
	}
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
	return w
}

func newServer(t *testing.T) *Server {
	t.Helper()
	st, err := model.Open(filepath.Join(t.TempDir(), "state"), model.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &Server{Store: st, Runtime: StaticRuntime{}}
}

func armError(t *testing.T, w *httptest.ResponseRecorder) *arm.Error {
	t.Helper()
	var b arm.Body
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Error == nil {
		t.Fatalf("status %d, body %q is not an ARM error (%v)", w.Code, w.Body.String(), err)
	}
	return b.Error
}

const sub = "/subscriptions/00000000-0000-0000-0000-000000000000"

func TestRoutesMatchFixedSegmentsInAnyCase(t *testing.T) {
	srv := newServer(t)
	vnet := `{"properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]},"subnets":[{"name":"sn","properties":{"addressPrefix":"10.0.0.0/24"}}]}}`
	if w := serve(t, srv, "PUT", sub+"/resourcegroups/Demo/providers/microsoft.NETWORK/VIRTUALNETWORKS/VNet1", vnet); w.Code != 201 {
		t.Fatalf("PUT in lower/upper case: %d %s", w.Code, w.Body)
	}
	for _, path := range []string{
		sub + "/resourceGroups/Demo/providers/Microsoft.Network/virtualNetworks/VNet1",
		sub + "/RESOURCEGROUPS/demo/PROVIDERS/microsoft.network/virtualnetworks/vnet1",
		sub + "/resourceGroups/Demo/providers/Microsoft.Network/virtualNetworks/VNet1/",
		sub + "//resourceGroups/Demo/providers/Microsoft.Network//virtualNetworks/VNet1//",
	} {
		w := serve(t, srv, "GET", path, "")
		var vn arm.VirtualNetwork
		if err := json.Unmarshal(w.Body.Bytes(), &vn); w.Code != 200 || err != nil {
			t.Errorf("GET %s: %d %s", path, w.Code, w.Body)
			continue
		}
		// Names keep the spelling they were created with; keywords are canonical.
		if vn.Name != "VNet1" || !strings.Contains(vn.ID, "/resourceGroups/Demo/providers/Microsoft.Network/virtualNetworks/VNet1") {
			t.Errorf("GET %s: name %q id %q", path, vn.Name, vn.ID)
		}
	}
	// A sub-resource and an action, spelled in lower case.
	if w := serve(t, srv, "GET", sub+"/resourceGroups/demo/providers/Microsoft.Network/virtualNetworks/vnet1/SUBNETS/SN", ""); w.Code != 200 {
		t.Errorf("subnet in upper case: %d %s", w.Code, w.Body)
	}
	if w := serve(t, srv, "GET", sub+"/resourcegroups/demo/resources", ""); w.Code != 200 || !strings.Contains(w.Body.String(), "VNet1") {
		t.Errorf("group resources: %d %s", w.Code, w.Body)
	}
	// A name that is also a keyword is a name.
	if w := serve(t, srv, "GET", sub+"/resourceGroups/providers/providers/Microsoft.Network/virtualNetworks/resourceGroups", ""); armError(t, w).Code != "ResourceNotFound" {
		t.Errorf("keyword as name: %d %s", w.Code, w.Body)
	}
}

func TestUnknownRoutesAndMethodsAnswerARMErrors(t *testing.T) {
	srv := newServer(t)
	cases := []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/nothing", 404, "InvalidRequestUri"},
		{"GET", sub + "/resourceGroups/rg/foo", 404, "InvalidRequestUri"},
		{"GET", sub + "/resourceGroups/rg/providers/Microsoft.Network", 404, "InvalidRequestUri"},
		{"GET", sub + "/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb/nothing", 404, "InvalidRequestUri"},
		{"GET", sub + "/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/../v", 404, "InvalidRequestUri"},
		{"PUT", sub + "/resourceGroups/rg/providers/Microsoft.Foo/bars/x", 400, "InvalidResourceType"},
		{"PATCH", sub + "/resourceGroups/rg/providers/Microsoft.Foo/bars/x", 400, "InvalidResourceType"},
		{"GET", sub + "/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/peerings/p", 400, "InvalidResourceType"},
		{"POST", sub + "/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v", 405, "MethodNotAllowed"},
		{"PATCH", sub + "/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/s", 405, "MethodNotAllowed"},
		{"DELETE", sub + "/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb/probes/p", 405, "MethodNotAllowed"},
		{"GET", sub + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web/start", 405, "MethodNotAllowed"},
		{"PATCH", sub, 405, "MethodNotAllowed"},
		{"POST", sub + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web/fly", 404, "InvalidResourceType"},
		{"POST", sub + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines/0/fly", 404, "InvalidResourceType"},
		{"POST", sub + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm/fly", 404, "ResourceNotFound"},
	}
	for _, c := range cases {
		w := serve(t, srv, c.method, c.path, "")
		e := armError(t, w)
		if w.Code != c.status || e.Code != c.code || e.Message == "" {
			t.Errorf("%s %s: %d %s, want %d %s", c.method, c.path, w.Code, w.Body, c.status, c.code)
		}
		if c.status == 405 && w.Header().Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", c.method, c.path)
		}
	}
	// Positive control: the same paths with the right method are served.
	if w := serve(t, srv, "GET", sub+"/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/s", ""); armError(t, w).Code != "ResourceNotFound" {
		t.Errorf("GET storage account: %d %s", w.Code, w.Body)
	}
	if w := serve(t, srv, "GET", sub, ""); w.Code != 200 {
		t.Errorf("GET subscription: %d %s", w.Code, w.Body)
	}
}

func TestGroupExistsByHEAD(t *testing.T) {
	srv := newServer(t)
	if w := serve(t, srv, "HEAD", sub+"/resourceGroups/g1", ""); w.Code != 404 {
		t.Errorf("HEAD of a missing group: %d", w.Code)
	}
	if w := serve(t, srv, "PUT", sub+"/resourcegroups/g1", `{"location":"eastus"}`); w.Code != 201 {
		t.Fatalf("PUT group: %d %s", w.Code, w.Body)
	}
	if w := serve(t, srv, "HEAD", sub+"/ResourceGroups/G1", ""); w.Code != 204 {
		t.Errorf("HEAD of a group: %d", w.Code)
	}
	// HEAD of a resource answers GET's status (net/http sends no body).
	if w := serve(t, srv, "HEAD", sub+"/resourceGroups/g1/providers/Microsoft.Network/virtualNetworks/none", ""); w.Code != 404 {
		t.Errorf("HEAD of a missing VNET: %d", w.Code)
	}
}

func TestEveryRouteCanBeRegistered(t *testing.T) {
	r := newServer(t).routes()
	for _, w := range []string{"resourceGroups", "Microsoft.Compute", "virtualMachineScaleSets", "powerOff", "loadBalancingRules"} {
		if r.words[strings.ToLower(w)] != w {
			t.Errorf("fixed segment %s spelled %q", w, r.words[strings.ToLower(w)])
		}
	}
	for _, typ := range []string{"microsoft.compute/virtualmachinescalesets/virtualmachines", "microsoft.network/loadbalancers/probes", "microsoft.storage/storageaccounts"} {
		if !r.types[typ] {
			t.Errorf("type %s has no routes", typ)
		}
	}
}

func TestFixedSegments(t *testing.T) {
	segs := strings.Split("subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines/0/start", "/")
	want := "F V F V F F F V F V F"
	var got []string
	for i := range segs {
		got = append(got, map[bool]string{true: "F", false: "V"}[fixedSegment(segs, i)])
	}
	if strings.Join(got, " ") != want {
		t.Errorf("fixed segments %v, want %s", got, want)
	}
	if typ := resourceType(segs); typ != "Microsoft.Compute/virtualMachineScaleSets/virtualMachines" {
		t.Errorf("type %s", typ)
	}
	if typ := resourceType(segs[:7]); typ != "Microsoft.Compute/virtualMachineScaleSets" {
		t.Errorf("list type %s", typ)
	}
}

// An api-version Azure does not publish for the resource is refused as ARM
// refuses it, before anything changes; a missing one too; the versions real
// clients send are served (positive controls).
func TestAPIVersionsRefusedAsARM(t *testing.T) {
	srv := newServer(t)
	set := sub + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web"
	var before int64
	srv.Store.View(func(st *model.State) { before = st.Seq })
	for _, c := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"PUT", sub + "/resourceGroups/rg?api-version=2099-01-01", `{"location":"eastus"}`, 400, "InvalidApiVersionParameter"},
		{"PUT", set + "?api-version=2019-13-01", scaleSetBody(1), 400, "NoRegisteredProviderFound"},
		{"GET", sub + "/resourceGroups/rg/providers/Microsoft.Network/loadBalancers?api-version=2010-01-01", "", 400, "NoRegisteredProviderFound"},
		{"GET", "/subscriptions?api-version=1.0", "", 400, "InvalidApiVersionParameter"},
		{"GET", sub + "/resourceGroups", "", 400, "MissingApiVersionParameter"},
	} {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest(c.method, c.path, strings.NewReader(c.body)))
		if e := armError(t, w); w.Code != c.status || e.Code != c.code {
			t.Errorf("%s %s: %d %s, want %d %s", c.method, c.path, w.Code, w.Body, c.status, c.code)
		}
	}
	var after int64
	srv.Store.View(func(st *model.State) { after = st.Seq })
	if after != before {
		t.Errorf("refused requests changed the state (seq %d -> %d)", before, after)
	}
	for _, c := range []struct{ method, path, body string }{
		{"PUT", sub + "/resourceGroups/rg?api-version=2019-10-01", `{"location":"eastus"}`},                                // az 2.45
		{"GET", sub + "/resourceGroups/rg/providers/Microsoft.Network/loadBalancers?api-version=2022-07-01", ""},           // az 2.45
		{"GET", sub + "/resourceGroups/rg/providers/Microsoft.Network/loadBalancers?api-version=2025-05-01", ""},           // armnetwork v9
		{"GET", sub + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets?api-version=2026-04-01", ""}, // armcompute v8
		{"GET", "/subscriptions?api-version=2021-04-01", ""},
	} {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest(c.method, c.path, strings.NewReader(c.body)))
		if w.Code >= 300 {
			t.Errorf("%s %s: %d %s", c.method, c.path, w.Code, w.Body)
		}
	}
}
