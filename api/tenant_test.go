package api

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmss-emulator/vmss/model"
)

// busyRuntime reports every resource pending.
type busyRuntime struct{ StaticRuntime }

func (busyRuntime) Pending(string) (bool, error) { return true, nil }

func serveDirect(t *testing.T, rt Runtime) *Server {
	t.Helper()
	st, err := model.Open(filepath.Join(t.TempDir(), "state"), model.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &Server{Store: st, Runtime: rt}
}

func callJSON(t *testing.T, s *Server, method, url, body string, tlsOn bool) (*httptest.ResponseRecorder, any) {
	t.Helper()
	req := httptest.NewRequest(method, url, strings.NewReader(body))
	if tlsOn {
		req.TLS = &tls.ConnectionState{}
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	var v any
	b, _ := io.ReadAll(rec.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s %s: not JSON: %q", method, url, b)
		}
	}
	return rec, v
}

func TestTenantLevelLists(t *testing.T) {
	s := serveDirect(t, StaticRuntime{})
	rec, v := callJSON(t, s, "GET", "/subscriptions?api-version=2019-11-01", "", false)
	subs := v.(map[string]any)["value"].([]any)
	if rec.Code != 200 || len(subs) != 1 || subs[0].(map[string]any)["subscriptionId"] != "00000000-0000-0000-0000-000000000000" || subs[0].(map[string]any)["tenantId"] != TenantID {
		t.Errorf("GET /subscriptions: %d %v", rec.Code, v)
	}
	rec, v = callJSON(t, s, "GET", "/tenants?api-version=2022-12-01", "", false)
	if rec.Code != 200 || v.(map[string]any)["value"].([]any)[0].(map[string]any)["tenantId"] != TenantID {
		t.Errorf("GET /tenants: %d %v", rec.Code, v)
	}
	if rec, _ := callJSON(t, s, "GET", "/tenants", "", false); rec.Code != 400 {
		t.Errorf("GET /tenants without api-version: %d", rec.Code)
	}
	rec, v = callJSON(t, s, "GET", "/subscriptions/00000000-0000-0000-0000-000000000000/locations?api-version=2022-12-01", "", false)
	if rec.Code != 200 || v.(map[string]any)["value"].([]any)[0].(map[string]any)["name"] != "eastus" {
		t.Errorf("locations: %d %v", rec.Code, v)
	}
}

func TestProviderAPIVersions(t *testing.T) {
	s := serveDirect(t, StaticRuntime{})
	rec, v := callJSON(t, s, "GET", "/subscriptions/00000000-0000-0000-0000-000000000000/providers/microsoft.compute?api-version=2021-04-01", "", false)
	if rec.Code != 200 {
		t.Fatalf("%d %v", rec.Code, v)
	}
	p := v.(map[string]any)
	var versions []any
	for _, rt := range p["resourceTypes"].([]any) {
		if rt.(map[string]any)["resourceType"] == "virtualMachineScaleSets" {
			versions = rt.(map[string]any)["apiVersions"].([]any)
		}
	}
	has := func(want string) bool {
		for _, x := range versions {
			if x == want {
				return true
			}
		}
		return false
	}
	if p["namespace"] != "Microsoft.Compute" || !has("2020-06-01") || !has("2022-11-01") || !has("2024-03-01") {
		t.Errorf("Microsoft.Compute: %v", p)
	}
	if rec, _ := callJSON(t, s, "GET", "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Sql?api-version=2021-04-01", "", false); rec.Code != 404 {
		t.Errorf("an unserved namespace: %d", rec.Code)
	}
}

func TestImageLookups(t *testing.T) {
	s := serveDirect(t, StaticRuntime{})
	base := "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Compute/locations/eastus/publishers/Canonical/artifacttypes/vmimage/offers/0001-com-ubuntu-server-jammy/skus/22_04-lts-gen2/versions"
	rec, v := callJSON(t, s, "GET", base+"?$top=1&$orderby=name%20desc&api-version=2020-06-01", "", false)
	list, ok := v.([]any)
	if rec.Code != 200 || !ok || len(list) != 1 {
		t.Fatalf("versions: %d %v", rec.Code, v)
	}
	name := list[0].(map[string]any)["name"].(string)
	rec, v = callJSON(t, s, "GET", base+"/"+name+"?api-version=2020-06-01", "", false)
	if rec.Code != 200 || v.(map[string]any)["properties"].(map[string]any)["hyperVGeneration"] != "V2" {
		t.Errorf("version %s: %d %v", name, rec.Code, v)
	}
	rec, _ = callJSON(t, s, "GET", strings.Replace(base, "22_04-lts-gen2", "no-such-sku", 1)+"?api-version=2020-06-01", "", false)
	if rec.Code != 404 {
		t.Errorf("unknown sku: %d", rec.Code)
	}
	rec, v = callJSON(t, s, "GET", "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Compute/locations/eastus/publishers?api-version=2020-06-01", "", false)
	if rec.Code != 200 || len(v.([]any)) < 3 {
		t.Errorf("publishers: %d %v", rec.Code, v)
	}
}

// Over TLS the operation URLs are https, and a poll of an operation still in
// progress says when to ask again (without Retry-After az waits 30 s).
func TestOperationHeadersOverTLS(t *testing.T) {
	s := serveDirect(t, busyRuntime{})
	rec, _ := callJSON(t, s, "PUT", "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/demo/providers/Microsoft.Network/virtualNetworks/v?api-version=2022-07-01",
		`{"location":"eastus","properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]}}}`, true)
	if rec.Code != 201 {
		t.Fatalf("PUT: %d %s", rec.Code, rec.Body)
	}
	async := rec.Header().Get("Azure-AsyncOperation")
	if !strings.HasPrefix(async, "https://") || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("headers %v", rec.Header())
	}
	rec, v := callJSON(t, s, "GET", strings.TrimPrefix(async, "https://example.com"), "", true)
	if rec.Code != 200 || v.(map[string]any)["status"] != "InProgress" || rec.Header().Get("Retry-After") == "" {
		t.Errorf("poll in progress: %d %v %v", rec.Code, v, rec.Header())
	}
	// On the socket (no TLS) the URLs stay http.
	rec, _ = callJSON(t, s, "PUT", "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/demo/providers/Microsoft.Network/virtualNetworks/w?api-version=2022-07-01",
		`{"location":"eastus","properties":{"addressSpace":{"addressPrefixes":["10.1.0.0/16"]}}}`, false)
	if !strings.HasPrefix(rec.Header().Get("Azure-AsyncOperation"), "http://") {
		t.Errorf("socket: %v", rec.Header())
	}
}

func TestListLoadBalancerChildren(t *testing.T) {
	s := serveDirect(t, StaticRuntime{})
	const lb = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/demo/providers/Microsoft.Network/loadBalancers/lb"
	rec, v0 := callJSON(t, s, "PUT", lb+"?api-version=2025-05-01",
		`{"location":"eastus","properties":{"probes":[{"name":"p","properties":{"protocol":"Tcp","port":80}}]}}`, false)
	if rec.Code != 201 {
		t.Fatalf("PUT: %d %v", rec.Code, v0)
	}
	rec, v := callJSON(t, s, "GET", lb+"/probes?api-version=2025-05-01", "", false)
	list, _ := v.(map[string]any)["value"].([]any)
	if rec.Code != 200 || len(list) != 1 || list[0].(map[string]any)["name"] != "p" {
		t.Errorf("probes: %d %v", rec.Code, v)
	}
	rec, v = callJSON(t, s, "GET", lb+"/inboundNatRules?api-version=2025-05-01", "", false)
	if list, ok := v.(map[string]any)["value"].([]any); rec.Code != 200 || !ok || len(list) != 0 {
		t.Errorf("no NAT rules: %d %v", rec.Code, v)
	}
	if rec, _ := callJSON(t, s, "GET", strings.Replace(lb, "/lb", "/nolb", 1)+"/probes?api-version=2025-05-01", "", false); rec.Code != 404 {
		t.Errorf("unknown load balancer: %d", rec.Code)
	}
}
