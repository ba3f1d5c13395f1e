// Package testutil holds what tests of several packages share: the root
// gate, unique kernel-object names, a log buffer safe for many goroutines,
// and the removal of a headless browser's profile.
package testutil

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
)

// RequireRoot skips t unless it runs as root (integration tests that make
// namespaces, links and mounts). CI runs as root, so they run there.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// UniqueName is prefix followed by 8 random hex digits: a name for a kernel
// object no other test, running or past, uses. With a prefix of up to 7
// characters it fits a link name (15 characters).
func UniqueName(prefix string) string {
	var b [4]byte
	rand.Read(b[:]) // never fails: crypto/rand.Read aborts the program instead of returning an error
	return prefix + hex.EncodeToString(b[:])
}

// SyncBuffer collects output (a test's log) from many goroutines.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
