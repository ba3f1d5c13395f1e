package template

import (
	"context"
	"errors"
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
