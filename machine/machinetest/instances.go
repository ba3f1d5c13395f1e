package machinetest

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/vmss-emulator/vmss/instance"
	"github.com/vmss-emulator/vmss/nsnet"
)

// Instances is a fake of the instance manager for workload.Instances and
// sshservice.Instances. A command runs as an ordinary process of the
// caller, in Root/<instance>/<its directory> (so "/root" is a temporary
// directory, not the host's); dials go to the host's loopback. It runs
// only what the test gives it: commands with absolute paths outside the
// usual binaries are the caller's responsibility.
type Instances struct {
	Root  string                   // required: a temporary directory
	Specs map[string]instance.Spec // what Lookup answers
}

// Exe implements workload.Instances and sshservice.Instances.
func (f *Instances) Exe() (string, error) { return os.Executable() }

// Command implements workload.Instances and sshservice.Instances.
func (f *Instances) Command(ctx context.Context, name string, req instance.ExecRequest) (*exec.Cmd, error) {
	if f.Root == "" {
		return nil, errors.New("machinetest.Instances: Root is not set")
	}
	if len(req.Argv) == 0 {
		return nil, errors.New("machinetest.Instances: empty command")
	}
	dir := filepath.Join(f.Root, name, strings.TrimPrefix(req.Dir, "/"))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, req.Argv[0], req.Argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), req.Env...)
	return cmd, nil
}

// Dialer implements workload.Instances: the instance's 127.0.0.1 is the host's.
func (f *Instances) Dialer(string) nsnet.DialFunc {
	var d net.Dialer
	return d.DialContext
}

// Lookup implements sshservice.Instances.
func (f *Instances) Lookup(name string) (instance.Spec, error) {
	s, ok := f.Specs[name]
	if !ok {
		return instance.Spec{}, instance.ErrNotFound
	}
	return s, nil
}

// NetnsPath implements sshservice.Instances: the fake has no namespaces.
func (f *Instances) NetnsPath(string) string { return "" }
