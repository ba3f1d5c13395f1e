package deploy

import (
	"context"
	"net/http"
	"testing"
)

// BenchmarkWhatIf measures a what-if of the NAT template against the
// deployed group (evaluation, one GET per resource, comparison).
func BenchmarkWhatIf(b *testing.B) {
	f := newFixture(b, nil)
	nat := readTemplate(b, "nat.json")
	if _, err := f.deploy("bench", "nat", body(nat, "", natParams(5), false)); err != nil {
		b.Fatal(err)
	}
	req := body(nat, "", natParams(5), false)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.c.Do(context.Background(), http.MethodPost, deploymentPath("bench", "nat")+"/whatIf", req, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRedeploy measures an identical incremental redeploy of the NAT
// template through the API with a static runtime (the engine's own cost).
func BenchmarkRedeploy(b *testing.B) {
	f := newFixture(b, nil)
	nat := readTemplate(b, "nat.json")
	req := body(nat, "", natParams(5), false)
	if _, err := f.deploy("bench", "nat", req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.deploy("bench", "nat", req); err != nil {
			b.Fatal(err)
		}
	}
}
