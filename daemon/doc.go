// Package daemon assembles the emulator: the persisted desired state (model),
// the machine side (host), the reconciler between them, the ARM API on a unix
// socket (api), template deployments, and Prometheus metrics on loopback.
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
