package workload

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/vmss-emulator/vmss/instance"
	"github.com/vmss-emulator/vmss/nsnet"
)

// Instances is what the workload runner needs of the instances: commands
// run inside one, and connections made from inside one (Application Health
// probes). The instance manager implements it (with nsnet for Dialer);
// tests use a fake that runs on the host.
type Instances interface {
	// Exe is the vmss executable, whose directory joins commands' PATH.
	Exe() (string, error)
	// Command prepares a command inside the named instance.
	Command(ctx context.Context, name string, req instance.ExecRequest) (*exec.Cmd, error)
	// Dialer dials from inside the named instance.
	Dialer(name string) nsnet.DialFunc
}

// Config configures a Runner. Zero values take the defaults given.
type Config struct {
	// Instances runs commands and dials inside instances (required).
	Instances Instances
	// LogDir holds one directory of extension logs per instance (required).
	LogDir string
	// WorkloadGrace is how long an extension command may run before it
	// counts as the instance's long-running workload; default 1s.
	WorkloadGrace time.Duration
	// HealthInterval overrides the Application Health extension's probe
	// interval (tests); zero uses the extension's settings.
	HealthInterval time.Duration
	// HealthIntervalScale multiplies the extension's interval (like the load
	// balancer's --probe-interval-scale); zero or negative means 1.
	HealthIntervalScale float64
	Logger              *slog.Logger
}

// Runner runs what makes an instance a workload: its customData script and
// extensions, the Application Health extension's prober, and run-command.
type Runner struct {
	cfg  Config
	inst Instances
	log  *slog.Logger
	base context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu        sync.Mutex
	health    map[string]*healthProbe // instance netns -> app health
	workloads map[string][]Proc       // instance netns -> workload processes started
}

// New returns a Runner. Close stops its probers and internal steps; it
// neither kills nor waits for workloads (stopping an instance kills them).
func New(cfg Config) *Runner {
	if cfg.WorkloadGrace == 0 {
		cfg.WorkloadGrace = time.Second
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runner{cfg: cfg, inst: cfg.Instances, log: lg, base: ctx, stop: cancel, health: map[string]*healthProbe{}, workloads: map[string][]Proc{}}
}

// LogDir is where an instance's extension logs are written.
func (w *Runner) LogDir(netns string) string { return filepath.Join(w.cfg.LogDir, netns) }

// Close stops every prober and waits for the goroutines the runner started,
// except those that watch workloads: workloads keep running (a restarted
// daemon adopts them).
func (w *Runner) Close() {
	w.mu.Lock()
	for _, hp := range w.health {
		hp.stop()
	}
	w.mu.Unlock()
	w.stop()
	w.wg.Wait()
}

// RunCommand runs a shell script as root inside an instance and waits for it
// (az vmss run-command invoke). Output is capped at 4 MiB per stream.
func (w *Runner) RunCommand(ctx context.Context, netns, script string) (string, string, int, error) {
	// The script reaches the shell on a pipe, as extension scripts do (see
	// scriptFD): it may carry secrets, and argv is public.
	cmd, err := w.inst.Command(ctx, netns, instance.ExecRequest{Argv: []string{"/bin/sh", scriptFD}, AsRoot: true})
	if err != nil {
		return "", "", 0, err
	}
	r, pw, err := os.Pipe()
	if err != nil {
		return "", "", 0, err
	}
	var out, errb limitedBuffer
	cmd.Stdout, cmd.Stderr, cmd.ExtraFiles = &out, &errb, []*os.File{r}
	err = cmd.Start()
	r.Close()
	if err != nil {
		pw.Close()
		return "", "", 0, err
	}
	go func() {
		_, _ = io.WriteString(pw, script)
		pw.Close()
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), errb.String(), ee.ExitCode(), nil
	}
	if err != nil {
		return "", "", 0, err
	}
	return out.String(), errb.String(), 0, nil
}

// limitedBuffer keeps the first 4 MiB written.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4<<20 - b.Len(); room > 0 {
		if len(p) > room {
			b.Buffer.Write(p[:room])
		} else {
			b.Buffer.Write(p)
		}
	}
	return len(p), nil
}
