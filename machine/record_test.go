package machine

import (
	"os"
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
