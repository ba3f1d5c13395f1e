package machine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
}

// records keeps one record per instance under dir, written atomically and
// durably (package atomicfile).
type records struct {
	dir string
	mu  sync.Mutex // serializes read-modify-write updates
}

func (rs *records) path(netns string) string {
	return filepath.Join(rs.dir, netns+".json")
}

func (rs *records) read(netns string) (record, bool) {
	var r record
	data, err := os.ReadFile(rs.path(netns))
	if err != nil {
		return r, false
	}
	if json.Unmarshal(data, &r) != nil {
		return record{}, false
	}
	return r, true
}

func (rs *records) write(netns string, r record) error {
	p := rs.path(netns)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("instance record: %w", err)
	}
	data, _ := json.Marshal(r)
	if err := atomicfile.Write(p, data, 0o600); err != nil {
		return fmt.Errorf("instance record: %w", err)
	}
	return nil
}

func (rs *records) update(netns string, f func(*record)) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, _ := rs.read(netns)
	f(&r)
	return rs.write(netns, r)
}

func (rs *records) remove(netns string) error {
	err := os.Remove(rs.path(netns))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
