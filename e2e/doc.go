// Package e2e holds the end-to-end tests of vmss: they build the vmss
// binary, run `vmss serve` as root with a unique prefix, state directory and
// public IP range, drive it with the CLI and the API, and check the result with
// real clients (OpenSSH, curl, dig). Every test removes what it made.
package e2e
