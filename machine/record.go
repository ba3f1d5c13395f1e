package machine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vmss-emulator/vmss/arm"
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
}

func (h *Machine) recordPath(netns string) string {
	return filepath.Join(h.dir(), "records", netns+".json")
}

func (h *Machine) readRecord(netns string) (record, bool) {
	var r record
	data, err := os.ReadFile(h.recordPath(netns))
	if err != nil {
		return r, false
	}
	if json.Unmarshal(data, &r) != nil {
		return record{}, false
	}
	return r, true
}

func (h *Machine) writeRecord(netns string, r record) error {
	p := h.recordPath(netns)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("instance record: %w", err)
	}
	data, _ := json.Marshal(r)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("instance record: %w", err)
	}
	return os.Rename(tmp, p)
}

func (h *Machine) updateRecord(netns string, f func(*record)) error {
	h.recMu.Lock()
	defer h.recMu.Unlock()
	r, _ := h.readRecord(netns)
	f(&r)
	return h.writeRecord(netns, r)
}

func (h *Machine) removeRecord(netns string) error {
	err := os.Remove(h.recordPath(netns))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
