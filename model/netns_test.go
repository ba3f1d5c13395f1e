package model

import (
	"encoding/json"
	"fmt"
	"testing"
)

// claimNetnsScan is how names were claimed before the owner index: a scan
// of Netns for the owner, else the first free name.
func claimNetnsScan(netns map[string]string, prefix, owner string, parts ...string) string {
	for n, o := range netns {
		if o == owner {
			return n
		}
	}
	used := map[string]bool{}
	for n := range netns {
		used[n] = true
	}
	n := uniqueNetns(netnsName(prefix, parts...), used)
	netns[n] = owner
	return n
}

// Claims give the names the scan of every name gave, collisions included
// (a name taken by another owner gets the next free numeric suffix, a name
// released is given again), across a state restored from its JSON and
// Netns changed directly.
func TestClaimNetnsSameNamesAsScan(t *testing.T) {
	s := New(DefaultConfig())
	ref := map[string]string{}
	step := 0
	claim := func(prefix, owner string, parts ...string) {
		t.Helper()
		step++
		want := claimNetnsScan(ref, prefix, owner, parts...)
		if got := s.claimNetnsWith(prefix, owner, parts...); got != want {
			t.Fatalf("step %d: claim %s %v = %q, want %q", step, owner, parts, got, want)
		}
	}
	release := func(name string) {
		t.Helper()
		s.releaseNetns(name)
		delete(ref, name)
	}
	// Collisions: names that differ only in characters netnsName maps to
	// '-', and a literal name that looks like a suffixed one.
	for _, owner := range []string{"a/1", "a/2", "a/3", "b/1", "c/1"} {
		claim("p-", owner, "rg", "web_0")
		claim("p-", owner, "rg", "web_0") // again: the same name
	}
	claim("p-", "d/1", "rg", "web.0")
	claim("p-", "d/2", "RG", "WEB_0")
	claim("p-", "e/1", "rg", "web_0-2")
	claim("p-", "e/2", "rg", "web_0-2")
	if got := s.Netns["p-rg-web_0-2"]; got != "a/2" {
		t.Fatalf("p-rg-web_0-2 is owned by %q, want a/2", got)
	}
	// Released names are given again, to the next owner that wants them.
	release("p-rg-web_0-2")
	release("p-rg-web_0")
	claim("p-", "f/1", "rg", "web_0")
	claim("p-", "f/2", "rg", "web_0")
	claim("p-", "f/3", "rg", "web_0")
	claim("p-", "a/3", "rg", "web_0")  // still holds its name
	s.ReleaseVNetNetns("p-rg-web_0-3") // owner a/3 is no VNET: released
	delete(ref, "p-rg-web_0-3")
	claim("p-", "a/3", "rg", "web_0")
	// Another prefix, as VNETs have.
	claim("pvnet-", "vnet/1", "rg", "web_0")
	claim("p-", "vnet/1", "rg", "other") // already owns a name

	// A state restored from JSON (as Store does) has no index yet.
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var restored State
	if err := json.Unmarshal(b, &restored); err != nil {
		t.Fatal(err)
	}
	restored.SetConfig(DefaultConfig())
	s = &restored
	claim("p-", "a/1", "rg", "web_0")
	claim("p-", "g/1", "rg", "web_0")

	// Netns changed directly, not through claim and release.
	s.Netns["p-rg-x"] = "h/1"
	ref["p-rg-x"] = "h/1"
	claim("p-", "h/1", "rg", "y")
	claim("p-", "h/2", "rg", "x")
	delete(s.Netns, "p-rg-x")
	delete(ref, "p-rg-x")
	claim("p-", "h/3", "rg", "x")

	// Many instances of one scale set, the case that was n².
	for i := range 500 {
		claim("p-", fmt.Sprintf("ss/%d", i), "rg", fmt.Sprintf("ss_%d", i%250))
	}
	if len(s.Netns) != len(ref) {
		t.Fatalf("%d names, want %d", len(s.Netns), len(ref))
	}
	for n, o := range ref {
		if s.Netns[n] != o {
			t.Errorf("Netns[%s] = %q, want %q", n, s.Netns[n], o)
		}
	}
}
