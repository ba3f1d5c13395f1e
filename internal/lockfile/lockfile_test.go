package lockfile

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestTryLockExcludesSecondHolder(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "x.lock")
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	if Holder(p) != os.Getpid() {
		t.Errorf("holder %d, want %d", Holder(p), os.Getpid())
	}
	_, err = TryLock(p) // another open file description: excluded like another process
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) {
		t.Fatalf("second TryLock: %v, want ErrHeld naming pid %d", err, os.Getpid())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := TryLock(p)
	if err != nil {
		t.Fatalf("TryLock after Close: %v", err)
	}
	l2.Close()
}

func TestRemoveIfFreeNeverRemovesAHeldLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	gone, err := RemoveIfFree(p)
	if err != nil || gone {
		t.Fatalf("RemoveIfFree of a held lock: gone=%v err=%v", gone, err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("held lock file removed: %v", err)
	}
	if _, err := TryLock(p); !errors.Is(err, ErrHeld) {
		t.Fatalf("lock no longer held after RemoveIfFree: %v", err)
	}
	l.Close()
	gone, err = RemoveIfFree(p)
	if err != nil || !gone {
		t.Fatalf("RemoveIfFree of a free lock: gone=%v err=%v", gone, err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("free lock file still there: %v", err)
	}
}

// TestTryLockRechecksTheFile: a file opened before its holder removed it
// must not give a second holder the lock.
func TestTryLockRechecksTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := os.Open(p) // a racer that opened the old file
	if err != nil {
		t.Fatal(err)
	}
	defer stale.Close()
	if err := l.Remove(); err != nil {
		t.Fatal(err)
	}
	if samePath(stale, p) {
		t.Fatal("stale file still at the path")
	}
	l2, err := TryLock(p) // a new file: locks it
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if !samePath(l2.f, p) {
		t.Error("TryLock holds a file that is not at the path")
	}
}
