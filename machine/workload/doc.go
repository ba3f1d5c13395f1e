// Package workload runs what makes an instance a workload: its customData
// script (when it is one), its extensions in provisioning order
// (CustomScript with local fileUris; other types are recorded as succeeded
// no-ops), the Application Health extension's prober (binary and rich
// modes, probed from inside the instance), and run-command. A command still
// running after the workload grace period is the instance's long-running
// workload and counts as succeeded; its output goes to the instance's log
// directory.
//
// Scripts (customData, CustomScript commands, run-command) reach their shell
// on a pipe (file descriptor 3), never on a command line, so protected
// settings show in no `ps`, error or log line. fileUris are regular files
// only, opened without following symbolic links and without blocking, and
// capped at MaxFileURISize.
//
// The runner reaches instances only through the Instances interface
// (commands and dials inside one); the instance manager implements it, and
// machinetest.Instances is a fake that runs commands as ordinary processes
// under a temporary directory, so the runner is tested without root.
package workload
