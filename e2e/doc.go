// Package e2e holds the end-to-end tests of vmss: they build the vmss
// binary, run `vmss serve` as root with a unique prefix, state directory and
// public IP range, drive it with the CLI and the API, and check the result with
// real clients (OpenSSH, curl, dig). Every test removes what it made.
//
// Tests are independent and call t.Parallel, except the two that measure the
// data path under load (failover under load, 10,000 connections): they run
// first, alone. -short skips the 10,000-connection test. Load balancing is
// grouped by capability: lb_rotation, lb_probe, lb_drain, lb_frontend,
// lb_scale.
package e2e
