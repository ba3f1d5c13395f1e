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
	"strings"
	"sync"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/instance"
	"github.com/vmss-emulator/vmss/reconcile"
)

// downloadDir is where CustomScript runs and puts fileUris, inside the
// instance's private /root.
const downloadDir = "/root/custom-script/download/0"

// RunExtensions runs the instance's customData script (when it is one) and
// its extensions in provisioning order, as root. A command still running after
// WorkloadGrace is the instance's workload and counts as succeeded. The views
// say what each extension did, also when one failed.
func (w *Runner) RunExtensions(ctx context.Context, in reconcile.InstanceSpec) ([]arm.ExtensionView, error) {
	if err := os.MkdirAll(w.LogDir(in.Netns), 0o700); err != nil {
		return nil, err
	}
	if script := customDataScript(in.CustomData); script != "" {
		if _, err := w.runCommand(ctx, in, "customData", "/root", []string{"/bin/sh", "-c", script}, nil); err != nil {
			return nil, fmt.Errorf("customData script of %s: %w", in.VMName, err)
		}
	}
	var views []arm.ExtensionView
	for _, e := range in.Extensions {
		v, err := w.runExtension(ctx, in, e)
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

func (w *Runner) runExtension(ctx context.Context, in reconcile.InstanceSpec, e arm.Extension) (arm.ExtensionView, error) {
	p := e.Properties
	view := arm.ExtensionView{Name: e.Name, Type: p.Publisher + "." + p.Type, TypeHandlerVersion: p.TypeHandlerVersion}
	typ := strings.ToLower(p.Publisher + "/" + p.Type)
	switch typ {
	case "microsoft.azure.extensions/customscript", "microsoft.ostcextensions/customscriptforlinux":
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
		argv := []string{"/bin/sh", "-c", cmdline}
		if script != "" {
			argv = []string{"/bin/sh", "-c", script}
		}
		// As on Azure, the command runs in the download directory, beside
		// its fileUris.
		out, err := w.runCommand(ctx, in, e.Name, downloadDir, argv, nil)
		if err != nil {
			view.Statuses = []arm.InstanceViewStatus{status("ProvisioningState/failed/1", "Error", "Enable failed: "+err.Error()+"\n"+out)}
			return view, err
		}
		view.Statuses = []arm.InstanceViewStatus{status("ProvisioningState/succeeded", "Info", "Enable succeeded: "+out)}
		return view, nil
	case "microsoft.managedservices/applicationhealthlinux":
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

// download copies fileUris (local paths or file:// URLs; the host has no
// internet) into the instance's download directory.
func (w *Runner) download(ctx context.Context, in reconcile.InstanceSpec, uris []string) error {
	if _, err := w.runCommand(ctx, in, "", "/", []string{"mkdir", "-p", downloadDir}, nil); err != nil {
		return err
	}
	for _, u := range uris {
		path := strings.TrimPrefix(u, "file://")
		if strings.Contains(path, "://") {
			return fmt.Errorf("fileUris %s: only local files (a path or file://) can be fetched here, the emulator has no internet", u)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("fileUris %s: %w", u, err)
		}
		dst := downloadDir + "/" + filepath.Base(path)
		if _, err := w.runCommand(ctx, in, "", "/", []string{"/bin/sh", "-c", `cat > "$0" && chmod 755 "$0"`, dst}, bytes.NewReader(data)); err != nil {
			return fmt.Errorf("copy %s into %s: %w", u, in.VMName, err)
		}
	}
	return nil
}

// runCommand runs argv as root in the instance, in directory dir. Output goes to the
// instance's log (named by logName) and the last lines are returned. A command
// still running after WorkloadGrace keeps running as the workload.
func (w *Runner) runCommand(ctx context.Context, in reconcile.InstanceSpec, logName, dir string, argv []string, stdin io.Reader) (string, error) {
	exe, err := w.inst.Exe()
	if err != nil {
		return "", err
	}
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:" + filepath.Dir(exe),
		"VMSS_INSTANCE_ID=" + in.InstanceID, "VMSS_VM_NAME=" + in.VMName,
	}
	cmd, err := w.inst.Command(w.base, in.Netns, instance.ExecRequest{Argv: argv, AsRoot: true, Dir: dir, Env: env})
	if err != nil {
		return "", err
	}
	var tail tailBuffer
	var out io.Writer = &tail
	var logf *os.File
	if logName != "" {
		logf, err = os.OpenFile(filepath.Join(w.LogDir(in.Netns), logName+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return "", err
		}
		out = io.MultiWriter(&tail, logf)
	}
	cmd.Stdout, cmd.Stderr, cmd.Stdin = out, out, stdin
	if err := cmd.Start(); err != nil {
		if logf != nil {
			logf.Close()
		}
		return "", err
	}
	done := make(chan error, 1)
	go func() {
		done <- cmd.Wait()
		if logf != nil {
			logf.Close()
		}
	}()
	grace := w.cfg.WorkloadGrace
	if logName == "" {
		grace = time.Minute // internal steps (mkdir, copies) must finish
	}
	select {
	case err := <-done:
		if err != nil {
			return tail.String(), fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
		}
		return tail.String(), nil
	case <-time.After(grace):
		w.wg.Add(1)
		go func() { defer w.wg.Done(); <-done }()
		return tail.String() + fmt.Sprintf("(still running as the instance's workload, pid %d)", cmd.Process.Pid), nil
	case <-ctx.Done():
		return tail.String(), ctx.Err()
	}
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
