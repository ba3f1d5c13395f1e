package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/internal/testutil"

	"github.com/vmss-emulator/vmss/api"
	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/client"
	"github.com/vmss-emulator/vmss/model"
)

const sub = "00000000-0000-0000-0000-000000000000"

// gateRuntime is a static runtime whose resources stay pending while the
// gate is closed.
type gateRuntime struct {
	api.StaticRuntime
	mu     sync.Mutex
	closed bool
}

func (g *gateRuntime) Pending(key string) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed && strings.Contains(key, "/virtualmachinescalesets/"), nil
}

func (g *gateRuntime) set(closed bool) {
	g.mu.Lock()
	g.closed = closed
	g.mu.Unlock()
}

type fixture struct {
	t     testing.TB
	dir   string
	store *model.Store
	srv   *api.Server
	eng   *Engine
	c     *client.Client
	logs  *testutil.SyncBuffer
}

func newFixture(t testing.TB, rt api.Runtime) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), logs: &testutil.SyncBuffer{}}
	f.open(rt)
	return f
}

func (f *fixture) open(rt api.Runtime) {
	t := f.t
	st, err := model.Open(filepath.Join(f.dir, "state"), model.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if rt == nil {
		rt = api.StaticRuntime{}
	}
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := &api.Server{Store: st, Runtime: rt}
	eng, err := New(Options{Handler: srv, Store: st, Logger: log, PollInterval: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv.Deployer = eng
	c := client.New("in-process")
	c.HTTP = &http.Client{Transport: handlerTransport{srv}}
	c.PollInterval = 2 * time.Millisecond
	f.store, f.srv, f.eng, f.c = st, srv, eng, c
	t.Cleanup(func() {
		eng.Close()
		st.Close()
	})
}

// restart closes the engine and store and opens them again, as a daemon restart does.
func (f *fixture) restart() {
	f.eng.Close()
	f.store.Close()
	f.open(nil)
}

func deploymentPath(group, name string) string {
	return "/subscriptions/" + sub + "/resourceGroups/" + group + "/providers/Microsoft.Resources/deployments/" + name
}

func readTemplate(t testing.TB, name string) json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// body builds a deployment request.
func body(tpl json.RawMessage, mode string, params map[string]any, skip bool) map[string]any {
	ps := map[string]any{}
	for k, v := range params {
		ps[k] = map[string]any{"value": v}
	}
	p := map[string]any{"mode": mode, "template": tpl, "parameters": ps}
	if skip {
		p["emulatorOptions"] = map[string]any{"skipUnknownResourceTypes": true}
	}
	return map[string]any{"properties": p}
}

// deploy PUTs a deployment and waits for it; it answers the final record and
// the operation's error.
func (f *fixture) deploy(group, name string, b map[string]any) (map[string]any, error) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	op, err := f.c.Do(ctx, http.MethodPut, deploymentPath(group, name), b, nil)
	if err != nil {
		return nil, err
	}
	werr := f.c.Wait(ctx, op, nil)
	var out map[string]any
	if _, err := f.c.Do(ctx, http.MethodGet, deploymentPath(group, name), nil, &out); err != nil {
		f.t.Fatalf("GET deployment %s: %v", name, err)
	}
	return out, werr
}

func (f *fixture) mustDeploy(group, name string, b map[string]any) map[string]any {
	f.t.Helper()
	out, err := f.deploy(group, name, b)
	if err != nil {
		f.t.Fatalf("deployment %s: %v\nrecord: %s\noperations: %s", name, err, js(out), js(f.operations(group, name)))
	}
	if s := dig(out, "properties", "provisioningState"); s != stateSucceeded {
		f.t.Fatalf("deployment %s: state %v", name, s)
	}
	return out
}

func (f *fixture) operations(group, name string) []map[string]any {
	f.t.Helper()
	var out struct {
		Value []map[string]any `json:"value"`
	}
	if _, err := f.c.Do(context.Background(), http.MethodGet, deploymentPath(group, name)+"/operations", nil, &out); err != nil {
		f.t.Fatal(err)
	}
	return out.Value
}

func (f *fixture) get(path string) (map[string]any, error) {
	var out map[string]any
	_, err := f.c.Do(context.Background(), http.MethodGet, path, nil, &out)
	return out, err
}

func (f *fixture) mustGet(path string) map[string]any {
	f.t.Helper()
	out, err := f.get(path)
	if err != nil {
		f.t.Fatalf("GET %s: %v", path, err)
	}
	return out
}

func (f *fixture) whatIf(group, name string, b map[string]any) ([]map[string]any, error) {
	var out struct {
		Status     string `json:"status"`
		Properties struct {
			Changes []map[string]any `json:"changes"`
		} `json:"properties"`
	}
	if _, err := f.c.Do(context.Background(), http.MethodPost, deploymentPath(group, name)+"/whatIf", b, &out); err != nil {
		return nil, err
	}
	if out.Status != "Succeeded" {
		f.t.Fatalf("what-if status %q", out.Status)
	}
	return out.Properties.Changes, nil
}

// groupResources lists the ids in a group.
func (f *fixture) groupResources(group string) []string {
	var out struct {
		Value []struct {
			ID string `json:"id"`
		} `json:"value"`
	}
	_, _ = f.c.Do(context.Background(), http.MethodGet, "/subscriptions/"+sub+"/resourceGroups/"+group+"/resources", nil, &out)
	var ids []string
	for _, v := range out.Value {
		ids = append(ids, v.ID)
	}
	return ids
}

func (f *fixture) seq() int64 {
	var s int64
	f.store.View(func(st *model.State) { s = st.Seq })
	return s
}

func rid(group, typ string, names ...string) string {
	return arm.MustID(sub, group, typ, names...).String()
}

func js(v any) string {
	b, _ := json.MarshalIndent(v, "", " ")
	return string(b)
}

func armErr(t *testing.T, err error) *arm.Error {
	t.Helper()
	var ae *arm.Error
	if !errors.As(err, &ae) {
		t.Fatalf("want an ARM error, got %v", err)
	}
	return ae
}

// instanceSnapshot is what must not change for an untouched instance.
type instanceSnapshot struct {
	ID, Netns, VMID, Name, ComputerName string
	ModelGen, BuildGen                  int64
	NATPorts                            map[string]int
}

func (f *fixture) instances(group, set string) map[string]instanceSnapshot {
	out := map[string]instanceSnapshot{}
	f.store.View(func(st *model.State) {
		ss := st.ScaleSets[strings.ToLower(rid(group, arm.TypeScaleSet, set))]
		if ss == nil {
			return
		}
		for id, in := range ss.Instances {
			out[id] = instanceSnapshot{in.ID, in.Netns, in.VMID, in.Name, in.ComputerName, in.ModelGen, in.BuildGen, in.NATPorts}
		}
	})
	return out
}
