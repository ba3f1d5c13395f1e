package machinetest

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vmss-emulator/vmss/instance"
	"github.com/vmss-emulator/vmss/nsnet"
)

// Instances is a fake of the instance manager for workload.Instances and
// sshservice.Instances. A command runs as an ordinary process of the
// caller, in Root/<instance>/<its directory> (so "/root" is a temporary
// directory, not the host's); dials go to the host's loopback, and a
// listener inside an instance is one on a free loopback port (Listened says
// which). It runs only what the test gives it: commands with absolute paths
// outside the usual binaries are the caller's responsibility.
type Instances struct {
	Root  string                   // required: a temporary directory
	Specs map[string]instance.Spec // what Lookup answers

	mu       sync.Mutex
	listened map[string]string // instance + " " + its address -> host address
}

// ListenTCP implements sshservice.Instances: addr inside the instance is a
// free port on 127.0.0.1 of the host.
func (f *Instances) ListenTCP(ctx context.Context, name, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listened == nil {
		f.listened = map[string]string{}
	}
	f.listened[name+" "+addr] = ln.Addr().String()
	return ln, nil
}

// Listened is the host address of an instance's listener on addr, or "".
func (f *Instances) Listened(name, addr string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.listened[name+" "+addr]
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

// Dialer implements workload.Instances and sshservice.Instances: the instance's 127.0.0.1 is the host's.
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
