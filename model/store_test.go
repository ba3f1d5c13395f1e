package model

import (
	"errors"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/arm"
)

// TestUpdatePanicUndoesAndUnlocks: a change function that panics after
// changing the state leaves the last saved state, returns a PanicError, and
// releases the lock for the next change.
func TestUpdatePanicUndoesAndUnlocks(t *testing.T) {
	st, err := Open(t.TempDir(), DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var seq int64
	st.View(func(s *State) { seq = s.Seq })
	err = st.Update(func(s *State) error {
		if _, _, e := s.PutVNet(arm.MustID("00000000-0000-0000-0000-000000000000", "rg", arm.TypeVirtualNetwork, "v"),
			[]byte(`{"properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]}}}`)); e != nil {
			return e
		}
		var m map[string]int
		m["x"] = 1 // panics
		return nil
	})
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Value == nil || len(pe.Stack) == 0 {
		t.Fatalf("Update of a panicking function: %v; want a PanicError with its stack", err)
	}
	st.View(func(s *State) {
		if s.Seq != seq || len(s.VNets) != 0 {
			t.Errorf("the panicking change was kept: seq %d -> %d, %d VNETs", seq, s.Seq, len(s.VNets))
		}
	})
	done := make(chan error, 1)
	go func() {
		done <- st.Update(func(s *State) error {
			_, _, e := s.PutVNet(arm.MustID("00000000-0000-0000-0000-000000000000", "rg", arm.TypeVirtualNetwork, "v"),
				[]byte(`{"properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]}}}`))
			if e != nil {
				return e
			}
			return nil
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the next change: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the next change is blocked: the lock was not released")
	}
}
