package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/vmss-emulator/vmss/internal/atomicfile"
)

// StateFile is the file name, inside the daemon's state directory, of the
// autoscale history and cooldowns.
const StateFile = "autoscale.json"

// persisted is the part of the monitor's memory that outlives a restart:
// each setting's last scale action (its cooldown clock) and its activity
// log. Samples are not kept: they describe a past the daemon did not watch.
type persisted struct {
	LastScale map[string]time.Time `json:"lastScale"`
	Events    map[string][]Event   `json:"events"`
}

// load reads the state file, when there is one. A missing file is a first
// start; an unreadable one is logged and the monitor starts afresh.
func (m *Monitor) load() {
	if m.o.StateFile == "" {
		return
	}
	b, err := os.ReadFile(m.o.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var p persisted
	if err == nil {
		err = json.Unmarshal(b, &p)
	}
	if err != nil {
		m.o.Logger.Warn("autoscale history and cooldowns start afresh", "file", m.o.StateFile, "err", err)
		return
	}
	for k, t := range p.LastScale {
		m.last[k] = t
	}
	m.log.mu.Lock()
	m.log.events = p.Events
	m.log.mu.Unlock()
}

// save writes the last scale actions and the activity log to the state
// file (temporary file, fsync, rename). With all false only scale actions
// are written (the cheap write after each scale action); with all true
// every evaluation too (when the monitor stops).
func (m *Monitor) save(all bool) error {
	if m.o.StateFile == "" {
		return nil
	}
	p := persisted{LastScale: map[string]time.Time{}, Events: map[string][]Event{}}
	m.mu.Lock()
	for k, t := range m.last {
		p.LastScale[k] = t
	}
	m.mu.Unlock()
	m.log.mu.Lock()
	for k, evs := range m.log.events {
		var keep []Event
		for _, e := range evs {
			if all || e.OperationName.Value != OpEvaluate {
				keep = append(keep, e)
			}
		}
		if len(keep) > 0 {
			p.Events[k] = keep
		}
	}
	m.log.mu.Unlock()
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("autoscale state: %w", err)
	}
	m.saveMu.Lock()
	defer m.saveMu.Unlock()
	if err := atomicfile.Write(m.o.StateFile, b, 0o600); err != nil {
		return fmt.Errorf("autoscale state (history and cooldowns are lost at the next start): %w", err)
	}
	return nil
}
