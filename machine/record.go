package machine

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/internal/atomicfile"
	"github.com/vmss-emulator/vmss/machine/workload"
)

// record is what the host remembers of an instance across daemon restarts.
type record struct {
	Complete   bool                `json:"complete"`
	BuildGen   int64               `json:"buildGeneration"`
	RestartGen int64               `json:"restartGeneration"`
	ModelGen   int64               `json:"modelGeneration"`
	WorkKey    string              `json:"workloadKey,omitempty"` // extensions ran for this key; cleared by stop
	VNetNetns  string              `json:"vnetNetns,omitempty"`   // where its NIC is attached
	Extensions []arm.ExtensionView `json:"extensions,omitempty"`
	// Workloads are the processes the extensions left running; a restarted
	// daemon runs the extensions again when all of them are gone.
	Workloads []workload.Proc `json:"workloads,omitempty"`
	// RanFor is the build and model generation ("build/model") whose
	// extensions last ran and succeeded, and WorkloadSteps the steps whose
	// command was then the workload; stop keeps both, so that a start or
	// restart of the same build and model need not wait to tell them again
	// (workload.Runner.BootExtensions).
	RanFor        string   `json:"ranFor,omitempty"`
	WorkloadSteps []string `json:"workloadSteps,omitempty"`
}

// records keeps one record per instance under dir, written atomically
// (atomicfile.Replace), in one of recordShards subdirectories (see path).
type records struct {
	dir string
	// migrated moves the records of the flat layout of earlier versions
	// (dir/<netns>.json) into their shards, once, before first use.
	migrated sync.Once
	// locks serialize read-modify-write updates of one record; records of
	// different instances are written in parallel (each write waits for
	// the disk, and the file system commits concurrent ones together).
	lmu   sync.Mutex
	locks map[string]*sync.Mutex

	// cache holds what the files hold, so a reconcile pass does not read
	// and parse a file per instance (every pass reads every record). The
	// daemon is the only writer of dir (it locks the state directory).
	cmu   sync.Mutex
	cache map[string]record
}

func cloneRecord(r record) record {
	r.Extensions = slices.Clone(r.Extensions)
	r.Workloads = slices.Clone(r.Workloads)
	r.WorkloadSteps = slices.Clone(r.WorkloadSteps)
	return r
}

func (rs *records) cached(netns string) (record, bool) {
	rs.cmu.Lock()
	defer rs.cmu.Unlock()
	r, ok := rs.cache[netns]
	return cloneRecord(r), ok
}

func (rs *records) remember(netns string, r record, ok bool) {
	rs.cmu.Lock()
	defer rs.cmu.Unlock()
	if rs.cache == nil {
		rs.cache = map[string]record{}
	}
	if ok {
		rs.cache[netns] = cloneRecord(r)
	} else {
		delete(rs.cache, netns)
	}
}

// recordShards is how many directories the records are spread over.
// Every write of a record creates a file and renames it over the record,
// each with the directory locked: with every instance's record in one
// directory, the writes of the instances created at once (64 by default)
// queued on that one lock, and the kernel spins while it waits. (What is
// left grows too: ext4 looks for each new file's inode past the inodes
// freed in the last seconds.)
const recordShards = 256

// path is dir/<shard>/<netns>.json, the shard two hex digits of a hash of
// netns.
func (rs *records) path(netns string) string {
	h := fnv.New32a()
	h.Write([]byte(netns))
	return filepath.Join(rs.dir, fmt.Sprintf("%02x", h.Sum32()%recordShards), netns+".json")
}

// legacyPath is where earlier versions kept the record: dir/<netns>.json.
func (rs *records) legacyPath(netns string) string {
	return filepath.Join(rs.dir, netns+".json")
}

// migrate moves every record of the flat layout into its shard (a record
// there already is newer: the flat one goes). A record it could not move
// is still read where it is, and removed with the instance.
func (rs *records) migrate() {
	rs.migrated.Do(func() {
		ents, err := os.ReadDir(rs.dir)
		if err != nil {
			return
		}
		for _, e := range ents {
			name, ok := strings.CutSuffix(e.Name(), ".json")
			if !ok || !e.Type().IsRegular() || strings.HasPrefix(name, ".") {
				continue
			}
			old, p := rs.legacyPath(name), rs.path(name)
			if _, err := os.Stat(p); err == nil {
				_ = os.Remove(old)
				continue
			}
			if os.MkdirAll(filepath.Dir(p), 0o700) == nil {
				_ = os.Rename(old, p)
			}
		}
	})
}

func (rs *records) read(netns string) (record, bool) {
	if r, ok := rs.cached(netns); ok {
		return r, true
	}
	rs.migrate()
	var r record
	data, err := os.ReadFile(rs.path(netns))
	if errors.Is(err, fs.ErrNotExist) {
		data, err = os.ReadFile(rs.legacyPath(netns))
	}
	if err != nil {
		return r, false
	}
	if json.Unmarshal(data, &r) != nil {
		return record{}, false
	}
	rs.remember(netns, r, true)
	return r, true
}

func (rs *records) write(netns string, r record) error {
	rs.migrate()
	p := rs.path(netns)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("instance record: %w", err)
	}
	data, _ := json.Marshal(r)
	// Atomic, not durable: a record describes namespaces, which a power
	// loss or kernel crash takes with it, and a restarted daemon reads what
	// was written. One lost or emptied by such a crash reads as a partial
	// instance, which is rebuilt. (Waiting for the disk, three times per
	// instance created, was a third of the time a creation waited.)
	if err := atomicfile.Replace(p, data, 0o600); err != nil {
		rs.remember(netns, record{}, false) // the file may or may not have changed
		return fmt.Errorf("instance record: %w", err)
	}
	rs.remember(netns, r, true)
	return nil
}

func (rs *records) lock(netns string) func() {
	rs.lmu.Lock()
	if rs.locks == nil {
		rs.locks = map[string]*sync.Mutex{}
	}
	l := rs.locks[netns]
	if l == nil {
		l = &sync.Mutex{}
		rs.locks[netns] = l
	}
	rs.lmu.Unlock()
	l.Lock()
	return l.Unlock
}

func (rs *records) update(netns string, f func(*record)) error {
	defer rs.lock(netns)()
	r, _ := rs.read(netns)
	f(&r)
	return rs.write(netns, r)
}

func (rs *records) remove(netns string) error {
	defer rs.lock(netns)()
	rs.remember(netns, record{}, false)
	rs.migrate()
	var errs []error
	for _, p := range []string{rs.path(netns), rs.legacyPath(netns)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
