package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/api"
	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

const (
	sub = "00000000-0000-0000-0000-000000000000"
	rg  = "/subscriptions/" + sub + "/resourceGroups/default"
	set = rg + "/providers/Microsoft.Compute/virtualMachineScaleSets/web"
)

// fixture is an ARM API over a fresh state with a scale set of two, and a
// dashboard over it served on loopback.
type fixture struct {
	store *model.Store
	arm   http.Handler
	dash  *Server
	srv   *httptest.Server
}

func newFixture(t testing.TB, readOnly bool) *fixture { return newFixtureN(t, readOnly, 2) }

func newFixtureN(t testing.TB, readOnly bool, capacity int) *fixture {
	t.Helper()
	st, err := model.Open(filepath.Join(t.TempDir(), "state"), model.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := &api.Server{Store: st, Runtime: api.StaticRuntime{}}
	f := &fixture{store: st, arm: a}
	f.setup(t, capacity)
	d, err := New(Config{ARM: a, Subscription: sub, ReadOnly: readOnly, Debounce: time.Millisecond, DataPlane: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f.serve(t, d)
	return f
}

// setup makes the resource group, its VNET and the scale set.
func (f *fixture) setup(t testing.TB, capacity int) {
	t.Helper()
	f.call(t, "PUT", rg, `{"location":"eastus"}`)
	f.call(t, "PUT", rg+"/providers/Microsoft.Network/virtualNetworks/vnet", `{"location":"eastus","properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]},"subnets":[{"name":"sn","properties":{"addressPrefix":"10.0.0.0/20"}}]}}`)
	f.call(t, "PUT", set, `{"location":"eastus","sku":{"name":"Standard_A1","capacity":`+strconv.Itoa(capacity)+`},"properties":{"overprovision":false,"singlePlacementGroup":false,"upgradePolicy":{"mode":"Manual"},"virtualMachineProfile":{
	  "storageProfile":{"imageReference":{"publisher":"Canonical","offer":"ubuntu-24_04-lts","sku":"server","version":"latest"}},
	  "osProfile":{"computerNamePrefix":"web","adminUsername":"azureuser","adminPassword":"Secr3t!pass"},
	  "networkProfile":{"networkInterfaceConfigurations":[{"name":"nic","properties":{"primary":true,"ipConfigurations":[{"name":"ip","properties":{"subnet":{"id":"`+rg+`/providers/Microsoft.Network/virtualNetworks/vnet/subnets/sn"}}}]}}]}}}}`)
}

// serve runs the dashboard d over the fixture's state, on loopback.
func (f *fixture) serve(t testing.TB, d *Server) {
	f.dash = d
	f.store.OnChange(d.Notify)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	f.srv = httptest.NewServer(d.Handler())
	t.Cleanup(func() { f.srv.Close(); cancel(); <-done })
}

func (f *fixture) call(t testing.TB, method, path, body string) {
	t.Helper()
	req := httptest.NewRequest(method, path+"?api-version="+arm.VersionFor(path, APIVersion), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	f.arm.ServeHTTP(rec, req)
	if rec.Code >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
	}
}

func (f *fixture) capacity(t testing.TB) int {
	t.Helper()
	n := -1
	f.store.View(func(st *model.State) {
		for _, ss := range st.ScaleSets {
			n = int(*ss.Model.Sku.Capacity)
		}
	})
	return n
}

// nextView reads server-sent events until a view arrives.
func nextView(t *testing.T, r *bufio.Reader) Snapshot {
	t.Helper()
	event := ""
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "view":
			var s Snapshot
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &s); err != nil {
				t.Fatalf("view: %v", err)
			}
			return s
		}
	}
}

func instances(s Snapshot) int {
	n := 0
	for _, g := range s.Groups {
		for _, ss := range g.ScaleSets {
			n += len(ss.Instances)
		}
	}
	return n
}

func TestEventsStreamTheViewAndEachChange(t *testing.T) {
	f := newFixture(t, false)
	resp, err := http.Get(f.srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	first := nextView(t, r)
	if n := instances(first); n != 2 {
		t.Fatalf("first view: %d instances, want 2", n)
	}
	ss := first.Groups[0].ScaleSets[0]
	if ss.Capacity != 2 || ss.Size != "Standard_A1" || ss.UpgradePolicy != "Manual" || ss.Overprovision || !strings.HasPrefix(ss.Image, "Canonical:") {
		t.Errorf("scale set view: %+v", ss)
	}
	if in := ss.Instances[1]; in.ID != "1" || in.PrivateIP == "" || in.ComputerName == "" {
		t.Errorf("instance row: %+v", in)
	}
	// A model change reaches the page without it asking.
	f.call(t, "PATCH", set, `{"sku":{"capacity":3}}`)
	next := nextView(t, r)
	for instances(next) != 3 {
		next = nextView(t, r)
	}
	if next.Seq <= first.Seq {
		t.Errorf("seq %d after %d", next.Seq, first.Seq)
	}
	found := false
	for _, a := range next.Activity {
		if a.Kind == "scale" && strings.Contains(a.Text, "2 → 3") {
			found = true
		}
	}
	if !found {
		t.Errorf("activity log has no scale event: %+v", next.Activity)
	}
}

func action(t *testing.T, f *fixture, body, token, origin string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+"/api/action", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set(TokenHeader, token)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestActionsNeedTheTokenAndTheSameOrigin(t *testing.T) {
	f := newFixture(t, false)
	scale := `{"op":"scale","scaleSet":"` + set + `","capacity":4}`
	for _, c := range []struct{ name, token, origin string }{
		{"no token", "", f.srv.URL},
		{"wrong token", "x" + f.dash.Token(), f.srv.URL},
		{"no origin", f.dash.Token(), ""},
		{"foreign origin", f.dash.Token(), "http://evil.example"},
		{"other port", f.dash.Token(), "http://127.0.0.1:1"},
	} {
		if code, body := action(t, f, scale, c.token, c.origin); code != http.StatusForbidden {
			t.Errorf("%s: %d %s, want 403", c.name, code, body)
		}
		if n := f.capacity(t); n != 2 {
			t.Fatalf("%s: capacity %d after a refused action", c.name, n)
		}
	}
	// Positive control: the page's own request goes through, as vmss scale.
	if code, body := action(t, f, scale, f.dash.Token(), f.srv.URL); code >= 300 {
		t.Fatalf("scale: %d %s", code, body)
	}
	if n := f.capacity(t); n != 4 {
		t.Errorf("capacity %d after scale to 4", n)
	}
	// Bad input changes nothing and says why.
	if code, body := action(t, f, `{"op":"scale","scaleSet":"/etc/passwd","capacity":1}`, f.dash.Token(), f.srv.URL); code != http.StatusBadRequest || !strings.Contains(body, "resource id") {
		t.Errorf("bad scale set: %d %s", code, body)
	}
}

func TestPageEmbedsTheTokenAndRefusesForeignHosts(t *testing.T) {
	f := newFixture(t, false)
	resp, err := http.Get(f.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `content="`+f.dash.Token()+`"`) {
		t.Fatalf("page: %d, token embedded: %v", resp.StatusCode, strings.Contains(string(b), f.dash.Token()))
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("page can be framed")
	}
	// A DNS-rebound name pointing at loopback must not read the page or its token.
	req, _ := http.NewRequest("GET", f.srv.URL+"/", nil)
	req.Host = "rebind.example:9100"
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || strings.Contains(string(b), f.dash.Token()) {
		t.Errorf("foreign Host: %d", resp.StatusCode)
	}
	for _, path := range []string{"/assets/app.js", "/assets/vendor/uplot/uPlot.iife.min.js", "/assets/vendor/uplot/LICENSE"} {
		resp, err := http.Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
}

func TestReadOnlyRefusesEveryAction(t *testing.T) {
	f := newFixture(t, true)
	code, body := action(t, f, `{"op":"scale","scaleSet":"`+set+`","capacity":4}`, f.dash.Token(), f.srv.URL)
	if code != http.StatusForbidden || !strings.Contains(body, "read-only") {
		t.Errorf("read-only scale: %d %s", code, body)
	}
	if n := f.capacity(t); n != 2 {
		t.Errorf("capacity %d in read-only mode", n)
	}
	resp, err := http.Get(f.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `name="vmss-readonly" content="true"`) {
		t.Errorf("the page does not know it is read-only")
	}
}

func TestActionsAreTheCLIsARMCalls(t *testing.T) {
	s := &Server{cfg: Config{Subscription: sub}}
	two := 2
	for _, c := range []struct {
		a            Action
		method, path string
		body         string
	}{
		{Action{Op: "scale", ScaleSet: set, Capacity: &two}, "PATCH", set, `{"sku":{"capacity":2}}`},
		{Action{Op: "stop", ScaleSet: set, Instance: "3"}, "POST", set + "/powerOff", `{"instanceIds":["3"]}`},
		{Action{Op: "start", ScaleSet: set, Instance: "3"}, "POST", set + "/start", `{"instanceIds":["3"]}`},
		{Action{Op: "restart", ScaleSet: set, Instance: "3"}, "POST", set + "/restart", `{"instanceIds":["3"]}`},
		{Action{Op: "reimage", ScaleSet: set, Instance: "3"}, "POST", set + "/reimage", `{"instanceIds":["3"]}`},
		{Action{Op: "delete", ScaleSet: set, Instance: "3"}, "POST", set + "/delete", `{"instanceIds":["3"]}`},
		{Action{Op: "fault-down", ScaleSet: set, FD: &two}, "POST", set + "/injectFault", `{"faultDomain":2,"state":"down"}`},
		{Action{Op: "fault-up", ScaleSet: set, FD: &two}, "POST", set + "/injectFault", `{"faultDomain":2,"state":"up"}`},
	} {
		m, p, b, err := s.armCall(c.a)
		got, _ := json.Marshal(b)
		if err != nil || m != c.method || p != c.path || string(got) != c.body {
			t.Errorf("%s: %s %s %s (%v), want %s %s %s", c.a.Op, m, p, got, err, c.method, c.path, c.body)
		}
	}
	for _, bad := range []Action{{Op: "stop", ScaleSet: set}, {Op: "stop", ScaleSet: set, Instance: "1/../x"}, {Op: "explode", ScaleSet: set}, {Op: "scale", ScaleSet: set}} {
		if _, _, _, err := s.armCall(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// The dashboard's reads follow a list's nextLink: with pages of 2 it still
// sees all 5 instances.
func TestReadsFollowNextLink(t *testing.T) {
	st, err := model.Open(filepath.Join(t.TempDir(), "state"), model.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := &api.Server{Store: st, Runtime: api.StaticRuntime{}, PageSize: 2}
	f := &fixture{store: st, arm: a}
	f.call(t, "PUT", rg+"/providers/Microsoft.Network/virtualNetworks/vnet", `{"location":"eastus","properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]},"subnets":[{"name":"sn","properties":{"addressPrefix":"10.0.0.0/20"}}]}}`)
	f.call(t, "PUT", set, `{"location":"eastus","sku":{"name":"Standard_A1","capacity":5},"properties":{"overprovision":false,"upgradePolicy":{"mode":"Manual"},"virtualMachineProfile":{
	  "osProfile":{"computerNamePrefix":"web","adminUsername":"azureuser","adminPassword":"Secr3t!pass"},
	  "networkProfile":{"networkInterfaceConfigurations":[{"name":"nic","properties":{"primary":true,"ipConfigurations":[{"name":"ip","properties":{"subnet":{"id":"`+rg+`/providers/Microsoft.Network/virtualNetworks/vnet/subnets/sn"}}}]}}]}}}}`)
	var list struct {
		Value []struct {
			InstanceID string `json:"instanceId"`
		} `json:"value"`
		NextLink string `json:"nextLink"`
	}
	if err := armGet(context.Background(), a, set+"/virtualMachines", nil, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Value) != 5 || list.NextLink != "" {
		t.Errorf("armGet: %d instances, nextLink %q; want all 5", len(list.Value), list.NextLink)
	}
	// A single object passes unchanged (positive control of the decoding).
	var one struct{ Name string }
	if err := armGet(context.Background(), a, set, nil, &one); err != nil || one.Name != "web" {
		t.Errorf("armGet of the scale set: %+v %v", one, err)
	}
}

func TestWhatIfIsAllowedReadOnlyButDeployIsNot(t *testing.T) {
	f := newFixture(t, true)
	tpl := `{"resourceGroup":"default","name":"d1","template":{"$schema":"https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#","contentVersion":"1.0.0.0","resources":[]}}`
	post := func(path, body, token string) (int, string) {
		req, _ := http.NewRequest("POST", f.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(TokenHeader, token)
		req.Header.Set("Origin", f.srv.URL)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("/api/deploy", tpl, f.dash.Token()); code != http.StatusForbidden || !strings.Contains(body, "read-only") {
		t.Errorf("deploy on a read-only dashboard: %d %s", code, body)
	}
	if code, body := post("/api/whatif", tpl, "wrong"); code != http.StatusForbidden {
		t.Errorf("what-if without the token: %d %s", code, body)
	}
	// Positive control: what-if changes nothing, so it is served (here the
	// API has no deployment engine: the ARM call is made and answers so).
	if code, body := post("/api/whatif", tpl, f.dash.Token()); code == http.StatusForbidden || code == http.StatusBadRequest {
		t.Errorf("what-if on a read-only dashboard: %d %s", code, body)
	}
}

func TestDeploymentCallsAreAz(t *testing.T) {
	s := &Server{cfg: Config{Subscription: sub}}
	dep := rg + "/providers/Microsoft.Resources/deployments/d1"
	tpl := json.RawMessage(`{"resources":[]}`)
	m, p, b, err := s.deploymentCall(Template{Group: "default", Name: "d1", Template: tpl, Parameters: json.RawMessage(`{"$schema":"x","parameters":{"n":{"value":3}}}`)}, false)
	got, _ := json.Marshal(b)
	if err != nil || m != "POST" || p != dep+"/whatIf" || string(got) != `{"properties":{"mode":"Incremental","parameters":{"n":{"value":3}},"template":{"resources":[]}}}` {
		t.Errorf("what-if: %s %s %s (%v)", m, p, got, err)
	}
	if m, p, _, err := s.deploymentCall(Template{Group: "default", Name: "d1", Mode: "Complete", Template: tpl}, true); err != nil || m != "PUT" || p != dep {
		t.Errorf("deploy: %s %s (%v)", m, p, err)
	}
	for _, bad := range []Template{{Group: "../x", Name: "d1", Template: tpl}, {Group: "default", Name: "a/b", Template: tpl}, {Group: "default", Name: "d1"}, {Group: "default", Name: "d1", Template: tpl, Mode: "Replace"}} {
		if _, _, _, err := s.deploymentCall(bad, false); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// A rebuild that shows nothing new is not sent: the sequence stays, and the
// next change is sent with the next sequence number.
func TestRefreshSendsOnlyChanges(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	f.dash.refresh(ctx)
	seq := func() int64 {
		f.dash.mu.Lock()
		defer f.dash.mu.Unlock()
		return f.dash.seq
	}
	first := seq()
	if first == 0 {
		t.Fatal("no view was built")
	}
	for range 3 {
		f.dash.refresh(ctx) // time and build cost differ; nothing shown does
	}
	if got := seq(); got != first {
		t.Fatalf("seq %d after rebuilds that changed nothing, want %d", got, first)
	}
	f.call(t, "PATCH", set, `{"sku":{"capacity":3}}`)
	f.dash.refresh(ctx)
	if got := seq(); got != first+1 {
		t.Fatalf("seq %d after a scale-out, want %d", got, first+1)
	}
}
