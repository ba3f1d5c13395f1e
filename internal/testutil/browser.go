package testutil

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// RemoveBrowserProfile removes a headless browser's profile directory once
// no process names it on its command line any more, waiting up to wait.
// Chromium's helpers (network service, storage service, crash handlers)
// outlive the browser by a moment and write into the profile as they go:
// removed earlier, the directory comes back. Call it after the browser was
// stopped.
func RemoveBrowserProfile(dir string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for ProcessesNaming(dir) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := ProcessesNaming(dir); n > 0 {
		os.RemoveAll(dir)
		return fmt.Errorf("remove browser profile %s: %d processes still use it after %s", dir, n, wait)
	}
	return os.RemoveAll(dir)
}

// ProcessesNaming counts the processes whose command line contains s.
func ProcessesNaming(s string) int {
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline") // the pattern is valid
	n := 0
	for _, p := range cmdlines {
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(s)) {
			n++
		}
	}
	return n
}
