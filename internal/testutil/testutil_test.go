package testutil

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestUniqueName(t *testing.T) {
	a, b := UniqueName("vmsst"), UniqueName("vmsst")
	if a == b || len(a) != 13 || !strings.HasPrefix(a, "vmsst") {
		t.Errorf("names %q %q", a, b)
	}
}

func TestSyncBufferFromManyGoroutines(t *testing.T) {
	var buf SyncBuffer
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() { defer wg.Done(); fmt.Fprintf(&buf, "line %d\n", i) }()
	}
	wg.Wait()
	if n := strings.Count(buf.String(), "\n"); n != 20 {
		t.Errorf("%d lines, want 20", n)
	}
}
