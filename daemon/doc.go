// Package daemon assembles the emulator: the persisted desired state (model),
// the machine side (machine), the reconciler between them, the ARM API on a
// unix socket (api), template deployments, and Prometheus metrics on loopback.
// It adapts the reconciler's instance status and the machine's data-plane and
// workload views into what the API asks of the runtime (api.Runtime).
//
// Typical usage:
//
//	d, err := daemon.Start(ctx, daemon.Options{})
//	if err != nil { ... }
//	<-ctx.Done()
//	d.Stop() // servers stop; instances and VNETs stay for the next start
//
// Teardown deletes everything in the state first (used by `vmss up`).
package daemon
