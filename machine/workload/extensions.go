package workload

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/instance"
	"github.com/vmss-emulator/vmss/reconcile"
)

// downloadDir is where CustomScript runs and puts fileUris, inside the
// instance's private /root.
const downloadDir = "/root/custom-script/download/0"

// CustomDataStep names the customData script among the steps of
// RunExtensions (the extensions are named by their names).
const CustomDataStep = "customData"

// RunExtensions runs the instance's customData script (when it is one) and
// its extensions in provisioning order, as root. A command still running after
// WorkloadGrace is the instance's workload and counts as succeeded. The views
// say what each extension did, also when one failed.
func (w *Runner) RunExtensions(ctx context.Context, in reconcile.InstanceSpec) ([]arm.ExtensionView, error) {
	return w.runExtensions(ctx, in, nil)
}

// BootExtensions runs the steps of RunExtensions again when a stopped
// instance starts (or restarts), as a VM starts its services when it boots.
// workloads are the steps (CustomDataStep or extension names) whose command
// was still running after the grace when the same build and model last ran
// (see Proc.Step): what they are is known, so such a step that nothing but
// other such steps follows is kept as the workload as soon as it started,
// without waiting the grace again. Every other step runs as in
// RunExtensions (the steps after a command keep their order and spacing).
// One of those workloads that ends within the grace after all is logged.
func (w *Runner) BootExtensions(ctx context.Context, in reconcile.InstanceSpec, workloads []string) ([]arm.ExtensionView, error) {
	steps := make([]string, 0, len(in.Extensions)+1)
	if customDataScript(in.CustomData) != "" {
		steps = append(steps, CustomDataStep)
	}
	for _, e := range in.Extensions {
		if runsCommand(e) {
			steps = append(steps, e.Name)
		}
	}
	// The known workloads at the end of the steps.
	adopt := map[string]bool{}
	for _, s := range slices.Backward(steps) {
		if !slices.Contains(workloads, s) {
			break
		}
		adopt[s] = true
	}
	return w.runExtensions(ctx, in, adopt)
}

func (w *Runner) runExtensions(ctx context.Context, in reconcile.InstanceSpec, adopt map[string]bool) ([]arm.ExtensionView, error) {
	if err := os.MkdirAll(w.LogDir(in.Netns), 0o700); err != nil {
		return nil, err
	}
	w.mu.Lock()
	delete(w.workloads, in.Netns)
	w.mu.Unlock()
	if script := customDataScript(in.CustomData); script != "" {
		if _, err := w.runScript(ctx, in, CustomDataStep, "/root", script, adopt[CustomDataStep]); err != nil {
			return nil, fmt.Errorf("customData script of %s: %w", in.VMName, err)
		}
	}
	var views []arm.ExtensionView
	for _, e := range in.Extensions {
		v, err := w.runExtension(ctx, in, e, adopt[e.Name])
		views = append(views, v)
		if err != nil {
			return views, fmt.Errorf("VM has reported a failure when processing extension '%s' (VMExtensionProvisioningError): %w", e.Name, err)
		}
	}
	return views, nil
}

func customDataScript(cd string) string {
	if cd == "" {
		return ""
	}
	data, err := base64.StdEncoding.DecodeString(cd)
	if err != nil {
		data = []byte(cd)
	}
	if bytes.HasPrefix(data, []byte("#!")) {
		return string(data)
	}
	return ""
}

func status(code, level, msg string) arm.InstanceViewStatus {
	return arm.InstanceViewStatus{Code: code, Level: level, DisplayStatus: map[string]string{"Info": "Provisioning succeeded", "Error": "Provisioning failed", "Warning": "Provisioning succeeded"}[level],
		Message: msg, Time: time.Now().UTC().Format(time.RFC3339)}
}

// runsCommand reports whether an extension runs a command in the instance.
func runsCommand(e arm.Extension) bool {
	switch strings.ToLower(e.Properties.Publisher + "/" + e.Properties.Type) {
	case "microsoft.azure.extensions/customscript", "microsoft.ostcextensions/customscriptforlinux":
		return true
	}
	return false
}

// runExtension runs one extension; with adopt, its command is the
// workload as soon as it started (see BootExtensions).
func (w *Runner) runExtension(ctx context.Context, in reconcile.InstanceSpec, e arm.Extension, adopt bool) (arm.ExtensionView, error) {
	p := e.Properties
	view := arm.ExtensionView{Name: e.Name, Type: p.Publisher + "." + p.Type, TypeHandlerVersion: p.TypeHandlerVersion}
	typ := strings.ToLower(p.Publisher + "/" + p.Type)
	switch {
	case runsCommand(e):
		var settings, protected struct {
			CommandToExecute string   `json:"commandToExecute"`
			Script           string   `json:"script"`
			FileUris         []string `json:"fileUris"`
		}
		_ = json.Unmarshal(orEmpty(p.Settings), &settings) // settings of another shape leave the fields empty: reported below
		_ = json.Unmarshal(orEmpty(p.ProtectedSettings), &protected)
		cmdline := firstNonEmpty(protected.CommandToExecute, settings.CommandToExecute)
		script := firstNonEmpty(protected.Script, settings.Script)
		if script != "" {
			if dec, err := base64.StdEncoding.DecodeString(script); err == nil {
				script = string(dec)
			}
		}
		if cmdline == "" && script == "" {
			err := errors.New("CustomScript needs settings.commandToExecute (or script)")
			view.Statuses = []arm.InstanceViewStatus{status("ProvisioningState/failed/1", "Error", err.Error())}
			return view, err
		}
		files := append(append([]string{}, settings.FileUris...), protected.FileUris...)
		if err := w.download(ctx, in, files); err != nil {
			view.Statuses = []arm.InstanceViewStatus{status("ProvisioningState/failed/1", "Error", err.Error())}
			return view, err
		}
		if script == "" {
			script = cmdline
		}
		// As on Azure, the command runs in the download directory, beside
		// its fileUris; the shell that runs it makes the directory (a
		// command of its own in the instance would cost a start tens of
		// milliseconds).
		out, err := w.runCommand(ctx, in, e.Name, "/root",
			[]string{"/bin/sh", "-c", `mkdir -p "$1" && cd "$1" && exec /bin/sh ` + scriptFD, "sh", strings.TrimPrefix(downloadDir, "/root/")}, nil, script, adopt)
		if err != nil {
			view.Statuses = []arm.InstanceViewStatus{status("ProvisioningState/failed/1", "Error", "Enable failed: "+err.Error()+"\n"+out)}
			return view, err
		}
		view.Statuses = []arm.InstanceViewStatus{status("ProvisioningState/succeeded", "Info", "Enable succeeded: "+out)}
		return view, nil
	case typ == "microsoft.managedservices/applicationhealthlinux":
		view.Statuses = []arm.InstanceViewStatus{status("ProvisioningState/succeeded", "Info", "Enable succeeded: application health is probed and reported in vmHealth")}
		return view, nil
	default:
		msg := fmt.Sprintf("the emulator does not run extension type %s/%s; recorded as a succeeded no-op", p.Publisher, p.Type)
		w.log.Warn("extension not emulated", "instance", in.VMName, "extension", e.Name, "type", p.Publisher+"/"+p.Type)
		view.Statuses = []arm.InstanceViewStatus{status("ProvisioningState/succeeded", "Warning", msg)}
		return view, nil
	}
}

func orEmpty(b []byte) []byte {
	if len(b) == 0 {
		return []byte("{}")
	}
	return b
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// MaxFileURISize caps each CustomScript fileUris file.
const MaxFileURISize = 64 << 20

// download copies fileUris (local paths or file:// URLs; the host has no
// internet) into the instance's download directory. Only regular files are
// copied: symbolic links are not followed (a link anywhere in the path is
// refused), and devices (/dev/zero), FIFOs and files larger than
// MaxFileURISize are refused before anything is read, so none of them can
// hang or exhaust the daemon.
func (w *Runner) download(ctx context.Context, in reconcile.InstanceSpec, uris []string) error {
	if len(uris) == 0 {
		return nil
	}
	if _, err := w.runCommand(ctx, in, "", "/root", []string{"mkdir", "-p", strings.TrimPrefix(downloadDir, "/root/")}, nil, "", false); err != nil {
		return err
	}
	for _, u := range uris {
		if err := w.copyFileURI(ctx, in, u); err != nil {
			return err
		}
	}
	return nil
}

func (w *Runner) copyFileURI(ctx context.Context, in reconcile.InstanceSpec, u string) error {
	path := strings.TrimPrefix(u, "file://")
	if strings.Contains(path, "://") {
		return fmt.Errorf("fileUris %s: only local files (a path or file://) can be fetched here, the emulator has no internet", u)
	}
	if !filepath.IsAbs(path) {
		return fmt.Errorf("fileUris %s: give an absolute path (or a file:// URL)", u)
	}
	f, err := openRegular(path, MaxFileURISize)
	if err != nil {
		return fmt.Errorf("fileUris %s: %w", u, err)
	}
	defer f.Close()
	name := filepath.Base(path)
	if _, err := w.runCommand(ctx, in, "", downloadDir, []string{"/bin/sh", "-c", `cat > "$0" && chmod 755 "$0"`, name},
		io.LimitReader(f, MaxFileURISize), "", false); err != nil {
		return fmt.Errorf("copy %s into %s: %w", u, in.VMName, err)
	}
	return nil
}

// openRegular opens path for reading without following symbolic links
// (openat2 RESOLVE_NO_SYMLINKS; O_NOFOLLOW on the last component on kernels
// before 5.6) and without blocking (a FIFO with no writer), and refuses
// anything but a regular file of at most max bytes.
func openRegular(path string, max int64) (*os.File, error) {
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY
	fd, err := unix.Openat2(unix.AT_FDCWD, path, &unix.OpenHow{Flags: uint64(flags), Resolve: unix.RESOLVE_NO_SYMLINKS})
	if errors.Is(err, unix.ENOSYS) {
		fd, err = unix.Open(path, flags, 0)
	}
	if errors.Is(err, unix.ELOOP) {
		return nil, errors.New("a symbolic link is not followed: give the path of the file itself")
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("%s is not a regular file (%s): only regular files are copied", path, fileKind(st.Mode))
	}
	if st.Size > max {
		unix.Close(fd)
		return nil, fmt.Errorf("%s is %d bytes, more than the %d MiB a fileUris file may have", path, st.Size, max>>20)
	}
	// Reads of a regular file never block; back to blocking mode for io.Copy.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	}
	return "not a regular file"
}

// scriptFD is where a script reaches the shell that runs it: a pipe passed
// as file descriptor 3, so its text (protected settings, customData) is in
// no process's argv or environment (`ps` shows /bin/sh /proc/self/fd/3),
// in no file, and in no error message.
const scriptFD = "/proc/self/fd/3"

// runScript runs a shell script as root in the instance; see runCommand.
func (w *Runner) runScript(ctx context.Context, in reconcile.InstanceSpec, logName, dir, script string, adopt bool) (string, error) {
	return w.runCommand(ctx, in, logName, dir, []string{"/bin/sh", scriptFD}, nil, script, adopt)
}

// waitDelay bounds how long Wait waits for a command's output pipes after
// the command exited (a child it left behind may hold them).
const waitDelay = 2 * time.Second

// runCommand runs argv as root in the instance, in directory dir, with
// script (when not empty) readable on file descriptor 3. Output goes to the
// instance's log (named by logName) and the last lines are returned. A command
// still running after WorkloadGrace keeps running as the workload; with
// adopt (an extension command known to be the workload, see
// BootExtensions), it is the workload at once.
//
// An extension command (logName set) may become the instance's workload,
// which outlives this daemon as a VM's processes outlive a hypervisor's
// management plane: it is tied to no context of the daemon, and writes to
// its log file directly, through no pipe that would break when the daemon
// exits. Its process is remembered (see Workloads) so that a restarted
// daemon can tell whether it still runs.
func (w *Runner) runCommand(ctx context.Context, in reconcile.InstanceSpec, logName, dir string, argv []string, stdin io.Reader, script string, adopt bool) (string, error) {
	exe, err := w.inst.Exe()
	if err != nil {
		return "", err
	}
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:" + filepath.Dir(exe),
		"VMSS_INSTANCE_ID=" + in.InstanceID, "VMSS_VM_NAME=" + in.VMName,
	}
	cctx := ctx
	if logName != "" {
		cctx = context.WithoutCancel(ctx)
	}
	cmd, err := w.inst.Command(cctx, in.Netns, instance.ExecRequest{Argv: argv, AsRoot: true, Dir: dir, Env: env})
	if err != nil {
		return "", err
	}
	cmd.WaitDelay = waitDelay
	what := strings.Join(argv, " ")
	var scriptR, scriptW *os.File
	if script != "" {
		what = "the script"
		if scriptR, scriptW, err = os.Pipe(); err != nil {
			return "", err
		}
		cmd.ExtraFiles = []*os.File{scriptR}
	}
	closeScript := func() {
		if scriptR != nil {
			scriptR.Close()
			scriptW.Close()
		}
	}
	var tail tailBuffer
	output := tail.String
	if logName != "" {
		logPath := filepath.Join(w.LogDir(in.Netns), logName+".log")
		logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			closeScript()
			return "", err
		}
		defer logf.Close() // the command has its own copy
		fi, err := logf.Stat()
		if err != nil {
			closeScript()
			return "", err
		}
		from := fi.Size()
		output = func() string { return logTail(logPath, from) }
		cmd.Stdout, cmd.Stderr = logf, logf
	} else {
		cmd.Stdout, cmd.Stderr = &tail, &tail
	}
	cmd.Stdin = stdin
	if err := cmd.Start(); err != nil {
		closeScript()
		return "", err
	}
	if scriptR != nil {
		scriptR.Close()
		go func() {
			// A script larger than the pipe's buffer is written as the
			// shell reads it; the write ends when the shell exits.
			_, _ = io.WriteString(scriptW, script)
			scriptW.Close()
		}()
	}
	proc := procOf(cmd.Process.Pid)
	proc.Step = logName
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	grace := w.cfg.WorkloadGrace
	if logName == "" {
		grace = time.Minute // internal steps (mkdir, copies) must finish
	}
	if adopt && logName != "" {
		// The workload (reaped as below); its end within the grace, which
		// would have failed the step, is logged.
		w.addWorkload(in.Netns, proc)
		go func() {
			t := time.NewTimer(grace)
			defer t.Stop()
			select {
			case err := <-done:
				if !w.isWorkload(in.Netns, proc) {
					return // the instance stopped (or ran its extensions again): not the workload's doing
				}
				w.log.Warn("an instance's workload ended right after it started again",
					"instance", in.VMName, "step", logName, "pid", proc.Pid, "err", err, "output", output())
			case <-t.C:
			case <-w.base.Done():
			}
		}()
		return output() + fmt.Sprintf("(started again as the instance's workload, pid %d)", cmd.Process.Pid), nil
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			return output(), fmt.Errorf("%s: %w", what, err)
		}
		return output(), nil
	case <-t.C:
		// The workload: reaped by the goroutine above when it ends, or
		// adopted by init when this daemon exits first.
		w.addWorkload(in.Netns, proc)
		return output() + fmt.Sprintf("(still running as the instance's workload, pid %d)", cmd.Process.Pid), nil
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		return output(), ctx.Err()
	}
}

// logTail returns the last 4 KiB of the log at path written after offset from.
func logTail(path string, from int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	from = max(from, fi.Size()-4096)
	b := make([]byte, max(fi.Size()-from, 0))
	n, _ := f.ReadAt(b, from)
	return string(b[:n])
}

// Proc identifies a process across pid reuse: its pid and its start time
// (in clock ticks after boot, /proc/<pid>/stat field 22).
type Proc struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
	// Step is the step of RunExtensions that started it (CustomDataStep or
	// an extension's name).
	Step string `json:"step,omitempty"`
}

func procOf(pid int) Proc { return Proc{Pid: pid, Start: startTime(pid)} }

// Alive reports whether the process still runs (not a zombie).
func (p Proc) Alive() bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid))
	if err != nil {
		return false
	}
	f := statFields(b)
	return len(f) > 19 && f[0] != "Z" && f[0] != "X" && f[19] == fmt.Sprint(p.Start)
}

// statFields returns the fields of /proc/<pid>/stat after the command name
// (state first, start time at index 19).
func statFields(b []byte) []string {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

func startTime(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	var v uint64
	if f := statFields(b); len(f) > 19 {
		fmt.Sscan(f[19], &v)
	}
	return v
}

func (w *Runner) addWorkload(netns string, p Proc) {
	w.mu.Lock()
	w.workloads[netns] = append(w.workloads[netns], p)
	w.mu.Unlock()
}

// ForgetWorkloads forgets the processes of an instance that stops or goes.
func (w *Runner) ForgetWorkloads(netns string) {
	w.mu.Lock()
	delete(w.workloads, netns)
	w.mu.Unlock()
}

func (w *Runner) isWorkload(netns string, p Proc) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Contains(w.workloads[netns], p)
}

// Workloads returns the processes that the last RunExtensions of an
// instance left running as its workload.
func (w *Runner) Workloads(netns string) []Proc {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Proc(nil), w.workloads[netns]...)
}

// tailBuffer keeps the last 4 KiB written.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4096 {
		t.buf = t.buf[len(t.buf)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
