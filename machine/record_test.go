package machine

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/arm"
)

// Records read back what was written, from the cache or the file, and a
// caller changing what it read changes nothing stored.
func TestRecordsCache(t *testing.T) {
	dir := t.TempDir()
	rs := &records{dir: dir}
	if _, ok := rs.read("a"); ok {
		t.Fatal("a record before any was written")
	}
	want := record{Complete: true, BuildGen: 3, Extensions: []arm.ExtensionView{{Name: "x"}}}
	if err := rs.write("a", want); err != nil {
		t.Fatal(err)
	}
	r, ok := rs.read("a")
	if !ok || !r.Complete || r.BuildGen != 3 || len(r.Extensions) != 1 {
		t.Fatalf("read = %+v, %v", r, ok)
	}
	r.Extensions[0].Name = "changed"
	if r2, _ := rs.read("a"); r2.Extensions[0].Name != "x" {
		t.Errorf("changing a read record changed the stored one: %q", r2.Extensions[0].Name)
	}
	// A fresh records (a restarted daemon) reads the file.
	if r, ok := (&records{dir: dir}).read("a"); !ok || r.BuildGen != 3 {
		t.Errorf("from the file: %+v, %v", r, ok)
	}
	if err := rs.update("a", func(r *record) { r.BuildGen = 4 }); err != nil {
		t.Fatal(err)
	}
	if r, _ := (&records{dir: dir}).read("a"); r.BuildGen != 4 {
		t.Errorf("update did not reach the file: %+v", r)
	}
	if err := rs.remove("a"); err != nil {
		t.Fatal(err)
	}
	if _, ok := rs.read("a"); ok {
		t.Error("a removed record is still read")
	}
	if _, err := os.Stat(rs.path("a")); !os.IsNotExist(err) {
		t.Errorf("record file after remove: %v", err)
	}
}

// Updates of one record are serialized (none is lost); an update of
// another record does not wait for them.
func TestRecordsUpdateLocking(t *testing.T) {
	rs := &records{dir: t.TempDir()}
	inA, releaseA := make(chan struct{}), make(chan struct{})
	doneA := make(chan error, 1)
	go func() {
		doneA <- rs.update("a", func(r *record) { close(inA); <-releaseA; r.BuildGen++ })
	}()
	<-inA
	doneB := make(chan error, 1)
	go func() { doneB <- rs.update("b", func(r *record) { r.BuildGen = 7 }) }()
	select {
	case err := <-doneB:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an update of record b waited for one of record a")
	}
	close(releaseA)
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := rs.update("a", func(r *record) { r.BuildGen++ }); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if r, _ := (&records{dir: rs.dir}).read("a"); r.BuildGen != 21 {
		t.Errorf("BuildGen after 21 updates = %d (an update was lost)", r.BuildGen)
	}
}

// Records of the flat layout of earlier versions (dir/<netns>.json) are
// read, moved into their shards on first use, and removed with their
// instance; a sharded record is newer than a flat one of the same
// instance.
func TestRecordsFlatLayoutMigrated(t *testing.T) {
	dir := t.TempDir()
	flat := func(netns string, gen int64) {
		t.Helper()
		data, _ := json.Marshal(record{Complete: true, BuildGen: gen})
		if err := os.WriteFile(filepath.Join(dir, netns+".json"), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for i := range 40 {
		n := fmt.Sprintf("vmss-rg-web_%d", i)
		names = append(names, n)
		flat(n, int64(i+1))
	}
	// Both layouts for one instance (a crash between a write and the
	// removal of the flat file): the sharded one wins.
	if err := (&records{dir: dir}).write("vmss-both", record{BuildGen: 7}); err != nil {
		t.Fatal(err)
	}
	flat("vmss-both", 1)

	rs := &records{dir: dir}
	for i, n := range names {
		if r, ok := rs.read(n); !ok || r.BuildGen != int64(i+1) {
			t.Errorf("read(%s) = %+v, %v, want build generation %d", n, r, ok, i+1)
		}
	}
	if r, ok := rs.read("vmss-both"); !ok || r.BuildGen != 7 {
		t.Errorf("read(vmss-both) = %+v, %v, want the sharded record", r, ok)
	}
	shards := map[string]bool{}
	for _, n := range append(names, "vmss-both") {
		if _, err := os.Stat(filepath.Join(dir, n+".json")); !os.IsNotExist(err) {
			t.Errorf("flat record of %s after migration: %v", n, err)
		}
		if _, err := os.Stat(rs.path(n)); err != nil {
			t.Errorf("sharded record of %s: %v", n, err)
		}
		shards[filepath.Dir(rs.path(n))] = true
	}
	if len(shards) < 10 {
		t.Errorf("41 records in %d directories, want them spread", len(shards))
	}
	// A fresh records (a restarted daemon) reads the moved records.
	if r, ok := (&records{dir: dir}).read(names[3]); !ok || r.BuildGen != 4 {
		t.Errorf("after restart: %+v, %v", r, ok)
	}
	// A flat record left where it was (it could not be moved) is read and
	// removed with its instance.
	flat("vmss-stuck", 9)
	if r, ok := rs.read("vmss-stuck"); !ok || r.BuildGen != 9 {
		t.Errorf("read(vmss-stuck) = %+v, %v", r, ok)
	}
	if err := rs.remove("vmss-stuck"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "vmss-stuck.json")); !os.IsNotExist(err) {
		t.Errorf("flat record after remove: %v", err)
	}
	if _, ok := (&records{dir: dir}).read("vmss-stuck"); ok {
		t.Error("a removed record is still read")
	}
}
