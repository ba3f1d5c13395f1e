package api

import (
	"errors"
	"sort"
	"time"

	"github.com/vmss-emulator/vmss/arm"
)

// Operation retention. A finished operation (one a poll found Succeeded or
// Failed) is kept OpRetention after it finished; one nobody polled to the
// end is kept OpMaxAge after it started; at most MaxOps are kept, the
// oldest going first.
const (
	OpRetention = time.Hour
	OpMaxAge    = 24 * time.Hour
	MaxOps      = 10000
	// opSweepEvery is how often startOp sweeps when under MaxOps.
	opSweepEvery = time.Minute
)

func (s *Server) now() time.Time {
	if s.clock != nil {
		return s.clock()
	}
	return time.Now()
}

// addOp records a new operation and evicts old ones.
func (s *Server) addOp(op *operation) {
	s.opsMu.Lock()
	defer s.opsMu.Unlock()
	s.ops.Store(op.ID, op)
	s.opsN++
	now := s.now()
	if s.opsN <= MaxOps && now.Sub(s.lastSweep) < opSweepEvery {
		return
	}
	s.lastSweep = now
	type aged struct {
		id      string
		started time.Time
	}
	var live []aged
	s.ops.Range(func(k, v any) bool {
		o := v.(*operation)
		o.mu.Lock()
		ended := o.ended
		o.mu.Unlock()
		if (!ended.IsZero() && now.Sub(ended) > OpRetention) || now.Sub(o.Started) > OpMaxAge {
			s.ops.Delete(k)
			s.opsN--
			return true
		}
		live = append(live, aged{k.(string), o.Started})
		return true
	})
	if len(live) <= MaxOps {
		return
	}
	sort.Slice(live, func(i, j int) bool { return live[i].started.Before(live[j].started) })
	for _, a := range live[:len(live)-MaxOps] {
		s.ops.Delete(a.id)
		s.opsN--
	}
}

// opResult is an operation's status and error. Once an operation has been
// reported Succeeded or Failed its answer is final: a later change of the
// same resource (which makes the resource pending again) starts an
// operation of its own and does not turn this one back to InProgress.
func (s *Server) opResult(op *operation) (status string, errBody *arm.Error, ended time.Time) {
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.status != "" {
		return op.status, op.err, op.ended
	}
	if s.Runtime.Applied() < op.Seq {
		return "InProgress", nil, time.Time{}
	}
	pending, err := s.pending(op.Key)
	if pending {
		return "InProgress", nil, time.Time{}
	}
	op.status = "Succeeded"
	if err != nil {
		op.status = "Failed"
		op.err = &arm.Error{Code: "OperationFailed", Message: err.Error(), Target: op.Key}
		var ae *arm.Error
		if errors.As(err, &ae) {
			op.err = ae
		}
	}
	op.ended = s.now()
	return op.status, op.err, op.ended
}
