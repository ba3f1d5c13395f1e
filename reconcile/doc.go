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
// Observing costs in proportion to the instances, so passes that follow
// changes do not list every instance: with a Kernel that can look at named
// instances (InstanceLooker), the reconciler lists them all once per
// Options.Resync, and between those full observations looks at the
// instances whose work ended since its last look; the others are as last
// observed. What changes in the kernel behind its back (a namespace removed
// by hand) and what the kernel reports on its own (health, probe states) is
// seen by the next full observation, Resync later at most.
//
// Work on one instance is serialized; different instances proceed in
// parallel, bounded by Options.Parallel. The translation from the model to
// kernel specs (Specs) and to the data plane (BuildPlan) is pure and tested
// without root; the Kernel is the only seam to the machine.
package reconcile
