// Package defaults holds the emulator's default names and places, in one
// block: the daemon, the instance manager, the model and the command line
// all start from these.
package defaults

const (
	// Prefix starts the name of every kernel object the emulator makes
	// (namespaces, links, mounts, cgroups), so cleanup finds them without
	// the state.
	Prefix = "vmss-"
	// RuntimeDir holds runtime files: namespace mounts, the control socket,
	// the copy of the executable.
	RuntimeDir = "/run/vmss"
	// StateDir holds the desired state (state.json) and per-instance files.
	StateDir = "/var/lib/vmss"
	// Socket is the daemon's control socket.
	Socket = RuntimeDir + "/vmss.sock"
)
