package instance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Present answers, for the names asked, what List answers: an instance
// with only a state directory, only a runtime directory, or nothing.
func TestPresentAgreesWithList(t *testing.T) {
	m := newTestManager(t)
	p := m.prefix()
	for _, d := range []string{filepath.Join(m.stateDir(), "instances", p+"a"), filepath.Join(m.runRoot(), p+"b")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	listed, err := m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(listed) != fmt.Sprint([]string{p + "a", p + "b"}) {
		t.Fatalf("List = %v, want %sa and %sb", listed, p, p)
	}
	got, err := m.Present(ctx, []string{p + "a", p + "b", p + "c", "other-a", p})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{p + "a": true, p + "b": true, p + "c": false}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Present = %v, want %v (names of another prefix, or the prefix alone, left out)", got, want)
	}
}
