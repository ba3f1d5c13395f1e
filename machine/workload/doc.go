// Package workload runs what makes an instance a workload: its customData
// script (when it is one), its extensions in provisioning order
// (CustomScript with local fileUris; other types are recorded as succeeded
// no-ops), the Application Health extension's prober (binary and rich
// modes, probed from inside the instance), and run-command. A command still
// running after the workload grace period is the instance's long-running
// workload and counts as succeeded; its output goes to the instance's log
// directory.
//
// The runner reaches instances only through the Instances interface
// (commands and dials inside one); the instance manager implements it, and
// machinetest.Instances is a fake that runs commands as ordinary processes
// under a temporary directory, so the runner is tested without root.
package workload
