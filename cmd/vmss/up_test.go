package main

import (
	"encoding/json"
	"testing"
)

// backendsUp counts the Up backends over every rule of a load balancer's
// health, as the API returns it.
func TestBackendsUp(t *testing.T) {
	for _, c := range []struct {
		json      string
		up, total int
	}{
		{`{}`, 0, 0},
		{`{"rules":[{"name":"r","backends":[]}]}`, 0, 0},
		{`{"rules":[{"backends":[{"state":"Up"},{"state":"Unknown"},{"state":"Up"}]}]}`, 2, 3},
		{`{"rules":[{"backends":[{"state":"Up"}]},{"backends":[{"state":"Down"},{"state":"Draining"}]}]}`, 1, 3},
		{`{"rules":[{"backends":[{"state":"Up"}]},{"backends":[{"state":"Up"}]}],"nat":[{"name":"n"}]}`, 2, 2},
	} {
		var h map[string]any
		if err := json.Unmarshal([]byte(c.json), &h); err != nil {
			t.Fatal(err)
		}
		if up, total := backendsUp(h); up != c.up || total != c.total {
			t.Errorf("backendsUp(%s) = %d of %d, want %d of %d", c.json, up, total, c.up, c.total)
		}
	}
}
