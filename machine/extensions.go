package machine

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/instance"
	"github.com/vmss-emulator/vmss/nsnet"
	"github.com/vmss-emulator/vmss/reconcile"
)

// downloadDir is where CustomScript runs and puts fileUris, inside the
// instance's private /root.
const downloadDir = "/root/custom-script/download/0"

// runExtensions runs the instance's customData script (when it is one) and
// its extensions in provisioning order, as root. A command still running after
// WorkloadGrace is the instance's workload and counts as succeeded.
func (h *Machine) runExtensions(ctx context.Context, in reconcile.InstanceSpec) ([]arm.ExtensionView, error) {
	if err := os.MkdirAll(h.logDir(in.Netns), 0o700); err != nil {
		return nil, err
	}
	if script := customDataScript(in.CustomData); script != "" {
		if _, err := h.runCommand(ctx, in, "customData", "/root", []string{"/bin/sh", "-c", script}, nil); err != nil {
			return nil, fmt.Errorf("customData script of %s: %w", in.VMName, err)
		}
	}
	var views []arm.ExtensionView
	for _, e := range in.Extensions {
		v, err := h.runExtension(ctx, in, e)
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

func (h *Machine) runExtension(ctx context.Context, in reconcile.InstanceSpec, e arm.Extension) (arm.ExtensionView, error) {
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
		_ = json.Unmarshal(orEmpty(p.Settings), &settings)
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
		if err := h.download(ctx, in, files); err != nil {
			view.Statuses = []arm.InstanceViewStatus{status("ProvisioningState/failed/1", "Error", err.Error())}
			return view, err
		}
		argv := []string{"/bin/sh", "-c", cmdline}
		if script != "" {
			argv = []string{"/bin/sh", "-c", script}
		}
		// As on Azure, the command runs in the download directory, beside
		// its fileUris.
		out, err := h.runCommand(ctx, in, e.Name, downloadDir, argv, nil)
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
		h.log.Warn("extension not emulated", "instance", in.VMName, "extension", e.Name, "type", p.Publisher+"/"+p.Type)
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
func (h *Machine) download(ctx context.Context, in reconcile.InstanceSpec, uris []string) error {
	if _, err := h.runCommand(ctx, in, "", "/", []string{"mkdir", "-p", downloadDir}, nil); err != nil {
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
		if _, err := h.runCommand(ctx, in, "", "/", []string{"/bin/sh", "-c", `cat > "$0" && chmod 755 "$0"`, dst}, bytes.NewReader(data)); err != nil {
			return fmt.Errorf("copy %s into %s: %w", u, in.VMName, err)
		}
	}
	return nil
}

// runCommand runs argv as root in the instance, in directory dir. Output goes to the
// instance's log (named by logName) and the last lines are returned. A command
// still running after WorkloadGrace keeps running as the workload.
func (h *Machine) runCommand(ctx context.Context, in reconcile.InstanceSpec, logName, dir string, argv []string, stdin io.Reader) (string, error) {
	exe, err := h.inst.Exe()
	if err != nil {
		return "", err
	}
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:" + filepath.Dir(exe),
		"VMSS_INSTANCE_ID=" + in.InstanceID, "VMSS_VM_NAME=" + in.VMName,
	}
	cmd, err := h.inst.Command(h.base, in.Netns, instance.ExecRequest{Argv: argv, AsRoot: true, Dir: dir, Env: env})
	if err != nil {
		return "", err
	}
	var tail tailBuffer
	var out io.Writer = &tail
	var logf *os.File
	if logName != "" {
		logf, err = os.OpenFile(filepath.Join(h.logDir(in.Netns), logName+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
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
	grace := h.cfg.WorkloadGrace
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
		h.wg.Add(1)
		go func() { defer h.wg.Done(); <-done }()
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

// ---- Application Health extension ----

type healthProbe struct {
	mu     sync.Mutex
	health string
	cancel context.CancelFunc
	done   chan struct{}
}

func (p *healthProbe) state() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.health
}

func (p *healthProbe) stop() {
	p.cancel()
	<-p.done
}

type healthSettings struct {
	Protocol    string  `json:"protocol"`
	Port        arm.Int `json:"port"`
	RequestPath string  `json:"requestPath"`
	Interval    arm.Int `json:"intervalInSeconds"`
	Probes      arm.Int `json:"numberOfProbes"`
}

// startHealth starts the Application Health extension's prober, when the
// instance has one: binary mode (HTTP 200 or a TCP connect is healthy) and
// rich mode (a 2xx JSON body {"ApplicationHealthState": "Healthy"}).
func (h *Machine) startHealth(in reconcile.InstanceSpec) {
	var set *healthSettings
	for _, e := range in.Extensions {
		if strings.EqualFold(e.Properties.Type, "ApplicationHealthLinux") {
			var s healthSettings
			_ = json.Unmarshal(orEmpty(e.Properties.Settings), &s)
			set = &s
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if set == nil || h.health[in.Netns] != nil {
		return
	}
	iv := time.Duration(arm.IntOr(&set.Interval, 5)) * time.Second
	if set.Interval == 0 {
		iv = 5 * time.Second
	}
	if sc := h.cfg.HealthIntervalScale; sc > 0 {
		iv = time.Duration(float64(iv) * sc)
	}
	if h.cfg.HealthInterval > 0 {
		iv = h.cfg.HealthInterval
	}
	need := int(set.Probes)
	if need < 1 {
		need = 1
	}
	ctx, cancel := context.WithCancel(h.base)
	p := &healthProbe{health: "Unknown", cancel: cancel, done: make(chan struct{})}
	h.health[in.Netns] = p
	dial := nsnet.Dialer(h.inst.NetnsPath(in.Netns))
	go func() {
		defer close(p.done)
		t := time.NewTicker(iv)
		defer t.Stop()
		run, last := 0, ""
		for {
			res := probeApp(ctx, dial, set, iv)
			if res == last {
				run++
			} else {
				run, last = 1, res
			}
			if run >= need {
				p.mu.Lock()
				p.health = res
				p.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// AppHealth is what the instance's Application Health extension reports now
// (Healthy, Unhealthy, Unknown before the first probe settles), or "" when it
// has none.
func (h *Machine) AppHealth(netns string) string {
	h.mu.Lock()
	hp := h.health[netns]
	h.mu.Unlock()
	if hp == nil {
		return ""
	}
	return hp.state()
}

// probeApp probes the application from inside the instance, at 127.0.0.1.
func probeApp(ctx context.Context, dial nsnet.DialFunc, s *healthSettings, timeout time.Duration) string {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(int64(s.Port)))
	switch strings.ToLower(s.Protocol) {
	case "tcp":
		c, err := dial(ctx, "tcp", addr)
		if err != nil {
			return "Unhealthy"
		}
		c.Close()
		return "Healthy"
	}
	scheme := "http"
	if strings.EqualFold(s.Protocol, "https") {
		scheme = "https"
	}
	tr := &http.Transport{DialContext: dial, DisableKeepAlives: true}
	if scheme == "https" {
		tr.TLSClientConfig = insecureTLS()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+"/"+strings.TrimPrefix(s.RequestPath, "/"), nil)
	if err != nil {
		return "Unhealthy"
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "Unhealthy"
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var rich struct {
		State string `json:"ApplicationHealthState"`
	}
	if json.Unmarshal(body, &rich) == nil && rich.State != "" {
		if resp.StatusCode/100 == 2 && strings.EqualFold(rich.State, "Healthy") {
			return "Healthy"
		}
		return "Unhealthy"
	}
	if resp.StatusCode == http.StatusOK {
		return "Healthy"
	}
	return "Unhealthy"
}

// RunCommand runs a shell script as root inside an instance and waits for it
// (az vmss run-command invoke). Output is capped at 4 MiB per stream.
func (h *Machine) RunCommand(ctx context.Context, netns, script string) (string, string, int, error) {
	cmd, err := h.inst.Command(ctx, netns, instance.ExecRequest{Argv: []string{"/bin/sh", "-c", script}, AsRoot: true})
	if err != nil {
		return "", "", 0, err
	}
	var out, errb limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
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
