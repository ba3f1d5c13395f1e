package template

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const testRG = "rg-test"

var testRGID = "/subscriptions/" + zeroGUID + "/resourceGroups/" + testRG

// fakeState is a deploy engine's store: the bodies of deployed resources,
// answering reference() and listKeys().
type fakeState struct {
	mu        sync.Mutex
	bodies    map[string]map[string]any // lower-case id
	refCalls  []string
	listCalls []string
}

func newFakeState() *fakeState { return &fakeState{bodies: map[string]map[string]any{}} }

func (s *fakeState) reference(_ context.Context, id, apiVersion string) (map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refCalls = append(s.refCalls, id+"@"+apiVersion)
	b, ok := s.bodies[strings.ToLower(id)]
	if !ok {
		return nil, fmt.Errorf("%s: %w", id, ErrNotDeployed)
	}
	return b, nil
}

func (s *fakeState) listKeys(_ context.Context, id, apiVersion string) (map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listCalls = append(s.listCalls, id+"@"+apiVersion)
	if _, ok := s.bodies[strings.ToLower(id)]; !ok {
		return nil, fmt.Errorf("%s: %w", id, ErrNotDeployed)
	}
	return map[string]any{"keys": []any{map[string]any{"keyName": "key1", "value": "KEY-" + id[strings.LastIndex(id, "/")+1:]}}, "key1": "KEY1"}, nil
}

// deploy stores a body as the engine would after creating it, with the
// properties a real resource gains (an IP address, an FQDN).
func (s *fakeState) deploy(r *Resource, body map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	props, _ := body["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
		body["properties"] = props
	}
	if r.Type == "Microsoft.Network/publicIPAddresses" {
		props["ipAddress"] = "203.0.113.7"
		if dns, ok := props["dnsSettings"].(map[string]any); ok {
			dns["fqdn"] = fmt.Sprintf("%s.westus.cloudapp.azure.com", dns["domainNameLabel"])
		}
	}
	props["provisioningState"] = "Succeeded"
	body["id"] = r.ID
	s.bodies[strings.ToLower(r.ID)] = body
}

func testScope(s *fakeState) Scope {
	return Scope{
		ResourceGroup: testRG, Location: "westus", DeploymentName: "test-deploy",
		Now:       func() time.Time { return time.Date(2024, 3, 5, 6, 7, 8, 0, time.UTC) },
		Reference: s.reference, ListKeys: s.listKeys,
	}
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// prepareTestdata parses testdata/<name>.json with its parameter file.
func prepareTestdata(t testing.TB, name string, s *fakeState, overrides ...string) *Deployment {
	t.Helper()
	tpl, err := Parse(readFile(t, name+".json"))
	if err != nil {
		t.Fatalf("Parse %s: %v", name, err)
	}
	params, err := ParseParameters(readFile(t, name+".parameters.json"))
	if err != nil {
		t.Fatalf("ParseParameters %s: %v", name, err)
	}
	d, err := Prepare(context.Background(), tpl, Inputs{Params: params, Overrides: overrides}, testScope(s))
	if err != nil {
		t.Fatalf("Prepare %s: %v", name, err)
	}
	return d
}

// deployAll evaluates and "deploys" every level in order, as the engine will.
func deployAll(t testing.TB, d *Deployment, s *fakeState) map[string]map[string]any {
	t.Helper()
	bodies := map[string]map[string]any{}
	for _, level := range d.Levels() {
		for _, r := range level {
			b, err := d.Evaluate(context.Background(), r)
			if err != nil {
				t.Fatalf("Evaluate %s: %v", r, err)
			}
			bodies[r.Name] = b
		}
		for _, r := range level {
			s.deploy(r, bodies[r.Name])
		}
	}
	return bodies
}

// levelNames renders the levels as "a b | c | d".
func levelNames(d *Deployment) string {
	var parts []string
	for _, l := range d.Levels() {
		var names []string
		for _, r := range l {
			names = append(names, r.Name)
		}
		parts = append(parts, strings.Join(names, " "))
	}
	return strings.Join(parts, " | ")
}

// get reads a nested value by keys and indexes: get(m, "properties", "x", 0).
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func mustPrepare(t *testing.T, tplJSON string, in Inputs) (*Deployment, error) {
	t.Helper()
	tpl, err := Parse([]byte(tplJSON))
	if err != nil {
		return nil, err
	}
	return Prepare(context.Background(), tpl, in, testScope(newFakeState()))
}
