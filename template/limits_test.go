package template

import (
	"context"
	"errors"
	"runtime"
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
			"variables.copy[1].input: the evaluated value is larger than the limit"},
	}
	for _, tt := range tests {
		if _, err := mustPrepare(t, tt.tpl, Inputs{}); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("got %v, want %q", err, tt.err)
		}
	}
}

// TestEvaluationBudget: a small template that repeats a 4 MB string in a
// copy loop fails with a clear error after allocating a bounded amount,
// wherever the loop is (variable, property, resource, output copy); the
// same templates with a small string deploy (positive control).
func TestEvaluationBudget(t *testing.T) {
	// s is 16000 × 256 = 4,096,000 bytes (256 bytes for the control).
	const big = "16000"
	vars := func(size string) string {
		return `"variables": {"a": "[padLeft('', 256, 'x')]", "s": "[replace(padLeft('', ` + size + `, 'y'), 'y', variables('a'))]"}`
	}
	tests := []struct {
		name, tpl, err string
	}{
		{"variable copy", `{"variables": {"a": "[padLeft('', 256, 'x')]", "s": "[replace(padLeft('', SIZE, 'y'), 'y', variables('a'))]", "copy": [
		    {"name": "c", "count": 800, "input": "[concat(variables('s'), copyIndex('c'))]"}]}, "resources": []}`,
			"variables.copy[0].input: the evaluated value is larger than the limit"},
		{"property copy", `{VARS, "resources": [{"type": "A.B/c", "apiVersion": "1", "name": "x", "properties": {"copy": [
		    {"name": "p", "count": 800, "input": "[concat(variables('s'), copyIndex('p'))]"}]}}]}`,
			"resources[0].properties.copy[0].input: the evaluated value is larger than the limit"},
		{"resource copy", `{VARS, "resources": [{"type": "A.B/c", "apiVersion": "1", "name": "[concat('x', copyIndex())]",
		    "copy": {"name": "l", "count": 800}, "properties": {"v": "[concat(variables('s'), copyIndex())]"}}]}`,
			"the evaluated template (variables, resource bodies and outputs together) is larger than the limit"},
		{"repeated references", `{VARS, "resources": [{"type": "A.B/c", "apiVersion": "1", "name": "x", "properties": {
		    "a": "[variables('s')]", "b": "[variables('s')]", "c": "[variables('s')]", "d": "[variables('s')]", "e": "[variables('s')]"}}]}`,
			"resources[0].properties.e: the evaluated value is larger than the limit"},
		{"literal in a copy", `{"resources": [], "outputs": {"o": {"type": "array", "copy": {"count": 800, "input": "LITERAL"}}}}`,
			"outputs.o.copy.input: the evaluated value is larger than the limit"},
		{"output copy", `{VARS, "resources": [], "outputs": {"o": {"type": "array", "copy": {"count": 800, "input": "[concat(variables('s'), copyIndex())]"}}}}`,
			"outputs.o.copy.input: the evaluated value is larger than the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl := strings.ReplaceAll(strings.ReplaceAll(tt.tpl, "VARS", vars(big)), "SIZE", big)
			tpl = strings.ReplaceAll(tpl, "LITERAL", strings.Repeat("y", 1<<20))
			if len(tpl) > 1024 && !strings.Contains(tt.tpl, "LITERAL") {
				t.Fatalf("the template is %d bytes; the point is a small one", len(tpl))
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := evaluateAll(t, tpl)
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got %v; want %q", err, tt.err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 512<<20 {
				t.Errorf("evaluation allocated %d MiB before failing; want it bounded by the limits", alloc>>20)
			}
			small := strings.ReplaceAll(strings.ReplaceAll(tt.tpl, "VARS", vars("1")), "SIZE", "1")
			small = strings.ReplaceAll(small, "LITERAL", "y")
			if err := evaluateAll(t, small); err != nil {
				t.Fatalf("the same template with a 256-byte string: %v", err)
			}
		})
	}
}

// evaluateAll prepares a template and evaluates every resource and the
// outputs, as a deployment does.
func evaluateAll(t *testing.T, tplJSON string) error {
	t.Helper()
	d, err := mustPrepare(t, tplJSON, Inputs{})
	if err != nil {
		return err
	}
	for _, r := range d.Resources() {
		if _, _, err := d.WhatIf(context.Background(), r); err != nil {
			return err
		}
	}
	_, err = d.Outputs(context.Background())
	return err
}
