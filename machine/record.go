package machine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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
// (atomicfile.Replace).
type records struct {
	dir string
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

func (rs *records) path(netns string) string {
	return filepath.Join(rs.dir, netns+".json")
}

func (rs *records) read(netns string) (record, bool) {
	if r, ok := rs.cached(netns); ok {
		return r, true
	}
	var r record
	data, err := os.ReadFile(rs.path(netns))
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
	err := os.Remove(rs.path(netns))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
