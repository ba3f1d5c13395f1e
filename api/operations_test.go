package api

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// fakeRuntime reports what a test says is pending.
type fakeRuntime struct {
	StaticRuntime
	mu      sync.Mutex
	pending map[string]bool
}

func (f *fakeRuntime) Pending(key string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pending[key], nil
}

func (f *fakeRuntime) set(key string, p bool) {
	f.mu.Lock()
	f.pending[key] = p
	f.mu.Unlock()
}

// memServer is a Server over a temporary state, called in memory.
func memServer(t testing.TB, rt Runtime) *Server {
	t.Helper()
	st, err := model.Open(filepath.Join(t.TempDir(), "state"), model.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &Server{Store: st, Runtime: rt}
}

func call(t testing.TB, s *Server, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	if !strings.Contains(path, "api-version=") {
		path += "?api-version=" + arm.VersionFor(path, "2024-03-01")
	}
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// opStatusOf polls an operation URL and returns its status ("" and the
// code for an error).
func opStatusOf(t *testing.T, s *Server, opURL string) string {
	t.Helper()
	u, err := url.Parse(opURL)
	if err != nil {
		t.Fatal(err)
	}
	w := call(t, s, "GET", u.Path+"?"+u.RawQuery, "")
	var body struct {
		Status string `json:"status"`
		Error  struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("operation answer %q: %v", w.Body.String(), err)
	}
	if w.Code != 200 {
		return body.Error.Code
	}
	return body.Status
}

const vnetPath = rg + "/Microsoft.Network/virtualNetworks/vnet"
const vnetBody = `{"properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]},"subnets":[{"name":"sn","properties":{"addressPrefix":"10.0.0.0/24"}}]}}`

func putVNet(t *testing.T, s *Server, body string) string {
	t.Helper()
	w := call(t, s, "PUT", vnetPath, body)
	if w.Code/100 != 2 {
		t.Fatalf("PUT: %d %s", w.Code, w.Body.String())
	}
	op := w.Header().Get("Azure-AsyncOperation")
	if op == "" {
		t.Fatal("no Azure-AsyncOperation header")
	}
	return op
}

func TestSucceededOperationStaysSucceeded(t *testing.T) {
	rt := &fakeRuntime{pending: map[string]bool{}}
	s := memServer(t, rt)
	key := strings.ToLower(vnetPath)
	rt.set(key, true)
	first := putVNet(t, s, vnetBody)
	if got := opStatusOf(t, s, first); got != "InProgress" {
		t.Fatalf("first operation while its resource is pending: %s", got)
	}
	rt.set(key, false)
	if got := opStatusOf(t, s, first); got != "Succeeded" {
		t.Fatalf("first operation once applied: %s", got)
	}
	// A later change makes the resource pending again: the first
	// operation's answer is final, the second one is in progress.
	rt.set(key, true)
	second := putVNet(t, s, strings.Replace(vnetBody, `"properties":{"addressSpace"`, `"tags":{"a":"b"},"properties":{"addressSpace"`, 1))
	if got := opStatusOf(t, s, first); got != "Succeeded" {
		t.Fatalf("first operation after a later change: %s; want Succeeded still", got)
	}
	if got := opStatusOf(t, s, second); got != "InProgress" {
		t.Fatalf("second operation: %s", got)
	}
	rt.set(key, false)
	if got := opStatusOf(t, s, second); got != "Succeeded" {
		t.Fatalf("second operation once applied: %s", got)
	}
}

func TestOperationsAreEvicted(t *testing.T) {
	rt := &fakeRuntime{pending: map[string]bool{}}
	s := memServer(t, rt)
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.clock = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	done := putVNet(t, s, vnetBody)
	if got := opStatusOf(t, s, done); got != "Succeeded" {
		t.Fatalf("operation: %s", got)
	}
	rt.set(strings.ToLower(vnetPath), true)
	unpolled := putVNet(t, s, vnetBody)
	advance(OpRetention - time.Minute)
	putVNet(t, s, vnetBody) // sweeps: nothing is old enough yet
	if got := opStatusOf(t, s, done); got != "Succeeded" {
		t.Fatalf("finished operation within the retention: %s", got)
	}
	advance(2 * time.Minute)
	kept := putVNet(t, s, vnetBody)
	if got := opStatusOf(t, s, done); got != "OperationNotFound" {
		t.Fatalf("operation finished more than %v ago: %s; want it evicted", OpRetention, got)
	}
	if got := opStatusOf(t, s, unpolled); got != "InProgress" {
		t.Fatalf("unfinished operation: %s; want it kept", got)
	}
	advance(OpMaxAge + time.Minute)
	putVNet(t, s, vnetBody)
	if got := opStatusOf(t, s, unpolled); got != "OperationNotFound" {
		t.Fatalf("operation started more than %v ago: %s; want it evicted", OpMaxAge, got)
	}
	if got := opStatusOf(t, s, kept); got != "OperationNotFound" {
		t.Fatalf("operation started more than %v ago: %s; want it evicted", OpMaxAge, got)
	}

	// The cap: the oldest go first.
	for i := 0; i < MaxOps+10; i++ {
		advance(time.Millisecond)
		s.addOp(&operation{ID: "op" + itoa(i), Started: s.now()})
	}
	n := 0
	s.ops.Range(func(any, any) bool { n++; return true })
	if n > MaxOps || s.opsN != n {
		t.Fatalf("%d operations kept (counted %d); want at most %d", n, s.opsN, MaxOps)
	}
	if _, ok := s.ops.Load("op0"); ok {
		t.Error("the oldest operation was kept past the cap")
	}
	if _, ok := s.ops.Load("op" + itoa(MaxOps+9)); !ok {
		t.Error("the newest operation was evicted")
	}
}
