// Package reconcile drives the kernel toward the desired state.
//
// The Reconciler is level-triggered: every pass it takes a snapshot of the
// desired state (package model), observes what exists in the kernel through
// the Kernel interface, and starts whatever work closes the gap — create,
// start, stop, drain, rebuild or delete instances; create or delete VNETs;
// reconfigure the data plane (DNS, NAT, load balancing). A pass is triggered
// by every change of the state, by the end of every piece of work, and by a
// periodic resync, so a crash at any moment (of the daemon or of one step) is
// repaired by the next pass: half-made instances are completed or rebuilt,
// leftovers are removed.
//
// Work on one instance is serialized; different instances proceed in
// parallel, bounded by Options.Parallel. The translation from the model to
// kernel specs (Specs) and to the data plane (BuildPlan) is pure and tested
// without root; the Kernel is the only seam to the machine.
package reconcile
