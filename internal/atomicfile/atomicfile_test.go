package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// recordSyncs makes syncFile record the paths it syncs.
func recordSyncs(t *testing.T) *[]string {
	var synced []string
	old := syncFile
	syncFile = func(f *os.File) error {
		synced = append(synced, f.Name())
		return old(f)
	}
	t.Cleanup(func() { syncFile = old })
	return &synced
}

func onlyFile(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only the file (no temporary left)", names)
	}
}

func TestWriteReplacesAndSyncsFileAndDirectory(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "spec.json")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	synced := recordSyncs(t)
	if err := Write(p, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "new" {
		t.Fatalf("content %q, %v; want new", b, err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	onlyFile(t, dir)
	if len(*synced) != 2 || filepath.Dir((*synced)[0]) != dir || (*synced)[1] != dir {
		t.Errorf("synced %v, want the temporary file of %s, then %s", *synced, dir, dir)
	}
}

func TestWriteNewRefusesExisting(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "key")
	synced := recordSyncs(t)
	if err := WriteNew(p, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(*synced, dir) {
		t.Errorf("directory not synced: %v", *synced)
	}
	if err := WriteNew(p, []byte("second"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second WriteNew: %v, want fs.ErrExist", err)
	}
	b, _ := os.ReadFile(p)
	if string(b) != "first" {
		t.Errorf("content %q, want first", b)
	}
	onlyFile(t, dir)
}

func TestWriteFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := syncFile
	syncFile = func(*os.File) error { return errors.New("disk gone") }
	defer func() { syncFile = old }()
	if err := Write(p, []byte("new"), 0o600); err == nil {
		t.Fatal("Write succeeded with a failing fsync")
	}
	b, _ := os.ReadFile(p)
	if string(b) != "old" {
		t.Errorf("content %q after a failed write, want old", b)
	}
	onlyFile(t, dir)
}

// Replace replaces the content and mode and waits for nothing: no file or
// directory is synced.
func TestReplaceDoesNotSync(t *testing.T) {
	synced := recordSyncs(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for _, content := range []string{"old", "new"} {
		if err := Replace(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != content {
			t.Fatalf("content = %q, %v; want %q", b, err, content)
		}
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, %v", st.Mode(), err)
	}
	onlyFile(t, dir)
	if len(*synced) != 0 {
		t.Errorf("synced %v, want nothing", *synced)
	}
	if err := Replace(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); err == nil {
		t.Error("Replace into a missing directory succeeded")
	}
	onlyFile(t, dir)
}
