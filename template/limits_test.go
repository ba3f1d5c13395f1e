package template

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestCanceledContext(t *testing.T) {
	s := newFakeState()
	d := prepareTestdata(t, "scale", s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Evaluate(ctx, d.Resources()[0]); !errors.Is(err, context.Canceled) {
		t.Fatalf("Evaluate with a canceled context: %v", err)
	}
	tpl, err := Parse(readFile(t, "scale.json"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Prepare(ctx, tpl, Inputs{Overrides: []string{"setName=a", "capacity=1"}}, testScope(s))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Prepare with a canceled context: %v", err)
	}
}

// TestTemplateLimits: templates that expand past ARM's limits, or whose
// values grow without bound through copies, are refused (found by fuzzing).
func TestTemplateLimits(t *testing.T) {
	tests := []struct{ tpl, err string }{
		{tplOf(res("A.B/c", "[concat('a', copyIndex())]", `"copy": {"name": "l", "count": 800}`), res("A.B/c", "x", "")),
			"resources[1]: the template expands to more than 800 resources"},
		{`{"variables": {"s": "[padLeft('x', 10000)]", "copy": [
		    {"name": "a", "count": 800, "input": "[variables('s')]"},
		    {"name": "b", "count": 800, "input": "[variables('a')]"}]}, "resources": []}`,
			"variables.copy[1]: the evaluated value is larger than the limit"},
	}
	for _, tt := range tests {
		if _, err := mustPrepare(t, tt.tpl, Inputs{}); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("got %v, want %q", err, tt.err)
		}
	}
}
