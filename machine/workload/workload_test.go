package workload_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/internal/testutil"
	"github.com/vmss-emulator/vmss/machine/machinetest"
	"github.com/vmss-emulator/vmss/machine/sshservice"
	"github.com/vmss-emulator/vmss/machine/workload"
	"github.com/vmss-emulator/vmss/reconcile"
)

var (
	_ workload.Instances   = (*machinetest.Instances)(nil)
	_ sshservice.Instances = (*machinetest.Instances)(nil)
)

func newRunner(t *testing.T) (*workload.Runner, string) {
	t.Helper()
	root := t.TempDir()
	w := workload.New(workload.Config{
		Instances: &machinetest.Instances{Root: root}, LogDir: filepath.Join(root, "logs"),
		WorkloadGrace: 300 * time.Millisecond, HealthInterval: 20 * time.Millisecond,
	})
	t.Cleanup(w.Close)
	return w, root
}

func TestCustomDataAndScriptsRunInTheInstance(t *testing.T) {
	w, root := newRunner(t)
	script := "#!/bin/sh\necho booted > booted.txt\n"
	in := reconcile.InstanceSpec{Netns: "web_0", VMName: "web_0", InstanceID: "0",
		CustomData: base64.StdEncoding.EncodeToString([]byte(script)),
		Extensions: []arm.Extension{
			{Name: "unknown", Properties: arm.ExtensionP{Publisher: "Contoso", Type: "Agent"}},
		}}
	views, err := w.RunExtensions(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	// customData runs in the instance's /root (the fake's Root/web_0/root).
	data, err := os.ReadFile(filepath.Join(root, "web_0", "root", "booted.txt"))
	if err != nil || strings.TrimSpace(string(data)) != "booted" {
		t.Fatalf("customData did not run in /root: %q, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(w.LogDir("web_0"), "customData.log")); err != nil {
		t.Fatalf("customData log: %v", err)
	}
	if len(views) != 1 || views[0].Statuses[0].Code != "ProvisioningState/succeeded" || views[0].Statuses[0].Level != "Warning" {
		t.Fatalf("an extension type that is not emulated: %+v", views)
	}

	// A failing script fails the instance's provisioning, naming the extension.
	in.CustomData = ""
	in.Extensions = []arm.Extension{{Name: "cse", Properties: arm.ExtensionP{Publisher: "Microsoft.Azure.Extensions", Type: "CustomScript",
		Settings: json.RawMessage(`{"commandToExecute":"echo broken; exit 3"}`)}}}
	views, err = w.RunExtensions(context.Background(), in)
	if err == nil || !strings.Contains(err.Error(), "'cse'") {
		t.Fatalf("failing CustomScript: %v", err)
	}
	if len(views) != 1 || views[0].Statuses[0].Level != "Error" || !strings.Contains(views[0].Statuses[0].Message, "broken") {
		t.Fatalf("failing CustomScript view: %+v", views)
	}

	// A command still running after the grace period is the workload.
	in.Extensions[0].Properties.Settings = json.RawMessage(`{"commandToExecute":"echo serving; exec sleep 30"}`)
	views, err = w.RunExtensions(context.Background(), in)
	if err != nil || !strings.Contains(views[0].Statuses[0].Message, "still running as the instance's workload") {
		t.Fatalf("long-running CustomScript: %+v, %v", views, err)
	}
}

func TestRunCommandReportsOutputAndExitCode(t *testing.T) {
	w, _ := newRunner(t)
	out, errOut, code, err := w.RunCommand(context.Background(), "web_0", "echo out; echo err >&2; exit 4")
	if err != nil || out != "out\n" || errOut != "err\n" || code != 4 {
		t.Fatalf("run-command: %q %q %d %v", out, errOut, code, err)
	}
}

func TestApplicationHealthRichAndBinaryModes(t *testing.T) {
	w, _ := newRunner(t)
	var state atomic.Value
	state.Store("Healthy")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/rich" {
			fmt.Fprintf(rw, `{"ApplicationHealthState": %q}`, state.Load())
			return
		}
		rw.WriteHeader(http.StatusServiceUnavailable)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	ext := func(path string) []arm.Extension {
		return []arm.Extension{{Name: "health", Properties: arm.ExtensionP{Publisher: "Microsoft.ManagedServices", Type: "ApplicationHealthLinux",
			Settings: json.RawMessage(fmt.Sprintf(`{"protocol":"http","port":%d,"requestPath":%q}`, port, path))}}}
	}
	if got := w.Health("web_0"); got != "" {
		t.Fatalf("health before the extension: %q", got)
	}
	w.StartHealth(reconcile.InstanceSpec{Netns: "web_0", Extensions: ext("/rich")})
	w.StartHealth(reconcile.InstanceSpec{Netns: "web_1", Extensions: ext("/binary-503")})
	waitHealth(t, w, "web_0", "Healthy")
	waitHealth(t, w, "web_1", "Unhealthy")
	state.Store("Unhealthy")
	waitHealth(t, w, "web_0", "Unhealthy")
	w.StopHealth("web_0")
	if got := w.Health("web_0"); got != "" {
		t.Fatalf("health after stop: %q", got)
	}
}

func waitHealth(t *testing.T, w *workload.Runner, netns, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for w.Health(netns) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s reports %q; want %q", netns, w.Health(netns), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestProtectedSettingsStayOutOfArgvErrorsAndViews: a protected
// commandToExecute runs, but its text is in no process's argv (ps), no
// error, no view and no log line.
func TestProtectedSettingsStayOutOfArgvErrorsAndViews(t *testing.T) {
	root := t.TempDir()
	var logBuf strings.Builder
	w := workload.New(workload.Config{
		Instances: &machinetest.Instances{Root: root}, LogDir: filepath.Join(root, "logs"),
		WorkloadGrace: 300 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	t.Cleanup(w.Close)
	const secret = "s3cr3t-protected-token"
	ext := func(protected string) []arm.Extension {
		return []arm.Extension{{Name: "cse", Properties: arm.ExtensionP{Publisher: "Microsoft.Azure.Extensions", Type: "CustomScript",
			Settings: json.RawMessage(`{}`), ProtectedSettings: json.RawMessage(protected)}}}
	}
	in := reconcile.InstanceSpec{Netns: "web_0", VMName: "web_0", InstanceID: "0"}

	// Long-running: while it runs, no argv on the host carries the secret.
	in.Extensions = ext(`{"commandToExecute":"echo started; sleep 30 # ` + secret + `"}`)
	views, err := w.RunExtensions(context.Background(), in)
	if err != nil || !strings.Contains(views[0].Statuses[0].Message, "started") {
		t.Fatalf("protected command did not run: %+v %v", views, err)
	}
	pid := workloadPid(t, views[0].Statuses[0].Message)
	t.Cleanup(func() {
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		for _, k := range append(strings.Fields(string(kids)), strconv.Itoa(pid)) {
			if p, err := strconv.Atoi(k); err == nil {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
	})
	// Positive control: the scan finds the workload's own argv.
	if !strings.Contains(cmdline(pid), "/bin/sh") {
		t.Fatalf("argv of the workload %d = %q, want /bin/sh", pid, cmdline(pid))
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if p, err := strconv.Atoi(e.Name()); err == nil && strings.Contains(cmdline(p), secret) {
			t.Errorf("process %d has the protected command in its argv: %q", p, cmdline(p))
		}
	}
	// Failing: the error, the view and the log name the extension, not the command.
	in.Extensions = ext(`{"commandToExecute":"echo failing; exit 3 # ` + secret + `"}`)
	views, err = w.RunExtensions(context.Background(), in)
	if err == nil || !strings.Contains(views[0].Statuses[0].Message, "failing") {
		t.Fatalf("failing protected command: %+v %v", views, err)
	}
	b, _ := json.Marshal(views)
	for what, text := range map[string]string{"error": err.Error(), "views": string(b), "log": logBuf.String()} {
		if strings.Contains(text, secret) {
			t.Errorf("the %s carries the protected command: %s", what, text)
		}
	}
}

func workloadPid(t *testing.T, msg string) int {
	t.Helper()
	_, after, ok := strings.Cut(msg, "workload, pid ")
	pid, err := strconv.Atoi(strings.TrimSuffix(after, ")"))
	if !ok || err != nil {
		t.Fatalf("no workload pid in %q", msg)
	}
	return pid
}

func cmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.ReplaceAll(string(b), "\x00", " ")
}

// TestFileURIsRegularFilesOnly: a regular file is copied; /dev/zero, a FIFO
// with no writer, a symbolic link (last component or a directory on the
// way) and a file over the size cap are refused at once, without reading.
func TestFileURIsRegularFilesOnly(t *testing.T) {
	w, root := newRunner(t)
	src := t.TempDir()
	file := filepath.Join(src, "app.sh")
	if err := os.WriteFile(file, []byte("echo app\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(src, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(src, "link.sh")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(src, filepath.Join(src, "dirlink")); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(src, "big")
	if err := os.Truncate(createEmpty(t, big), workload.MaxFileURISize+1); err != nil {
		t.Fatal(err)
	}
	cse := func(uri string) reconcile.InstanceSpec {
		return reconcile.InstanceSpec{Netns: "web_0", VMName: "web_0", InstanceID: "0",
			Extensions: []arm.Extension{{Name: "cse", Properties: arm.ExtensionP{Publisher: "Microsoft.Azure.Extensions", Type: "CustomScript",
				Settings: json.RawMessage(fmt.Sprintf(`{"fileUris":[%q],"commandToExecute":"sh ./app.sh"}`, uri))}}}}
	}
	// Positive control.
	views, err := w.RunExtensions(context.Background(), cse("file://"+file))
	if err != nil || !strings.Contains(views[0].Statuses[0].Message, "app") {
		t.Fatalf("regular file: %+v %v", views, err)
	}
	if _, err := os.Stat(filepath.Join(root, "web_0", "root", "custom-script", "download", "0", "app.sh")); err != nil {
		t.Fatalf("app.sh not in the download directory: %v", err)
	}
	for _, tc := range []struct{ uri, want string }{
		{"/dev/zero", "not a regular file (a character device)"},
		{fifo, "not a regular file (a FIFO)"},
		{link, "symbolic link is not followed"},
		{filepath.Join(src, "dirlink", "app.sh"), "symbolic link is not followed"},
		{big, "more than the 64 MiB"},
		{"relative/app.sh", "absolute path"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := w.RunExtensions(ctx, cse(tc.uri))
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("fileUris %s: %v, want an error saying %q", tc.uri, err, tc.want)
		}
	}
}

func createEmpty(t *testing.T, path string) string {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestWorkloadOutlivesCloseWithoutHangingIt: stopping the daemon (Close)
// leaves the workload running, also one whose child holds its output, and
// does not wait for it; the workload's process is known and checkable.
func TestWorkloadOutlivesCloseWithoutHangingIt(t *testing.T) {
	root := t.TempDir()
	w := workload.New(workload.Config{
		Instances: &machinetest.Instances{Root: root}, LogDir: filepath.Join(root, "logs"),
		WorkloadGrace: 300 * time.Millisecond,
	})
	in := reconcile.InstanceSpec{Netns: "web_0", VMName: "web_0", InstanceID: "0",
		Extensions: []arm.Extension{{Name: "cse", Properties: arm.ExtensionP{Publisher: "Microsoft.Azure.Extensions", Type: "CustomScript",
			Settings: json.RawMessage(`{"commandToExecute":"sleep 60 & echo $! > bg.pid; echo serving; exec sleep 60"}`)}}}}
	views, err := w.RunExtensions(context.Background(), in)
	if err != nil || !strings.Contains(views[0].Statuses[0].Message, "serving") {
		t.Fatalf("long-running CustomScript: %+v, %v", views, err)
	}
	procs := w.Workloads("web_0")
	if len(procs) != 1 || !procs[0].Alive() {
		t.Fatalf("workloads %+v, want one live process", procs)
	}
	bgData, _ := os.ReadFile(filepath.Join(root, "web_0", "root", "custom-script", "download", "0", "bg.pid"))
	bg, _ := strconv.Atoi(strings.TrimSpace(string(bgData)))
	t.Cleanup(func() {
		_ = syscall.Kill(procs[0].Pid, syscall.SIGKILL)
		if bg > 0 {
			_ = syscall.Kill(bg, syscall.SIGKILL)
		}
	})
	closed := make(chan struct{})
	go func() { w.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close still waiting for the workload after 20s")
	}
	time.Sleep(100 * time.Millisecond)
	if !procs[0].Alive() {
		t.Fatal("the workload died with Close")
	}
	// Positive control: a killed workload is reported gone.
	_ = syscall.Kill(procs[0].Pid, syscall.SIGKILL)
	deadline := time.Now().Add(10 * time.Second)
	for procs[0].Alive() {
		if time.Now().After(deadline) {
			t.Fatal("a killed workload still reported alive")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if (workload.Proc{Pid: procs[0].Pid, Start: procs[0].Start + 1}).Alive() {
		t.Error("a process with another start time (a reused pid) counts as the workload")
	}
}

// BootExtensions keeps a known workload as the workload as soon as it
// started only where nothing but other known workloads follows it: a
// known workload that a command follows is waited for as in RunExtensions
// (the command after it may count on it), and a step not known as a
// workload is run to its end.
func TestBootExtensionsAdoptsOnlyTrailingKnownWorkloads(t *testing.T) {
	w, root := newRunner(t)
	cmd := func(name, c string) arm.Extension {
		s, _ := json.Marshal(map[string]string{"commandToExecute": c})
		return arm.Extension{Name: name, Properties: arm.ExtensionP{Publisher: "Microsoft.Azure.Extensions", Type: "CustomScript", Settings: s}}
	}
	in := reconcile.InstanceSpec{Netns: "web_0", VMName: "web_0", InstanceID: "0", Extensions: []arm.Extension{
		cmd("cache", "exec sleep 60"),
		cmd("after", "echo after >> after.txt"),
		cmd("web", "exec sleep 60"),
		{Name: "health", Properties: arm.ExtensionP{Publisher: "Microsoft.ManagedServices", Type: "ApplicationHealthLinux"}},
	}}
	t.Cleanup(func() {
		for _, p := range w.Workloads("web_0") {
			_ = syscall.Kill(p.Pid, syscall.SIGKILL)
		}
	})
	views, err := w.BootExtensions(context.Background(), in, []string{"cache", "web"})
	if err != nil || len(views) != 4 {
		t.Fatalf("BootExtensions: %+v, %v", views, err)
	}
	for i, want := range []string{"still running as the instance's workload", "Enable succeeded", "started again as the instance's workload"} {
		if m := views[i].Statuses[0].Message; !strings.Contains(m, want) {
			t.Errorf("step %s: %q, want %q", views[i].Name, m, want)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(root, "web_0", "root", "custom-script", "download", "0", "after.txt")); string(data) != "after\n" {
		t.Errorf("after.txt = %q: the step between the workloads did not run to its end", data)
	}
	procs := w.Workloads("web_0")
	if len(procs) != 2 || procs[0].Step != "cache" || procs[1].Step != "web" || !procs[0].Alive() || !procs[1].Alive() {
		t.Errorf("workloads %+v, want the cache and web steps' processes", procs)
	}
}

// A known workload started again that ends within the grace (it would have
// failed the step on a first run) is logged; one that ends because its
// instance stopped (its processes forgotten first) is not.
func TestBootedWorkloadEndingEarlyIsLogged(t *testing.T) {
	root := t.TempDir()
	var logBuf testutil.SyncBuffer
	w := workload.New(workload.Config{
		Instances: &machinetest.Instances{Root: root}, LogDir: filepath.Join(root, "logs"),
		WorkloadGrace: time.Minute, Logger: slog.New(slog.NewTextHandler(&logBuf, nil)),
	})
	t.Cleanup(w.Close)
	settings, _ := json.Marshal(map[string]string{"commandToExecute": "exec sleep 60"})
	in := reconcile.InstanceSpec{Netns: "web_0", VMName: "web_0", InstanceID: "0", Extensions: []arm.Extension{
		{Name: "web", Properties: arm.ExtensionP{Publisher: "Microsoft.Azure.Extensions", Type: "CustomScript", Settings: settings}}}}
	const warning = "workload ended right after it started again"
	kill := func() {
		for _, p := range w.Workloads("web_0") {
			_ = syscall.Kill(p.Pid, syscall.SIGKILL)
		}
	}
	t.Cleanup(kill)
	waitLog := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for want != strings.Contains(logBuf.String(), warning) {
			if time.Now().After(deadline) {
				t.Fatalf("warning logged = %v, want %v; log:\n%s", !want, want, logBuf.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// Stopped: forgotten, then killed; nothing to warn about.
	if _, err := w.BootExtensions(context.Background(), in, []string{"web"}); err != nil {
		t.Fatal(err)
	}
	procs := w.Workloads("web_0")
	w.ForgetWorkloads("web_0")
	for _, p := range procs {
		_ = syscall.Kill(p.Pid, syscall.SIGKILL)
	}
	for len(procs) > 0 && procs[0].Alive() {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the watcher has seen the end
	waitLog(false)

	// Positive control: the workload ends on its own.
	if _, err := w.BootExtensions(context.Background(), in, []string{"web"}); err != nil {
		t.Fatal(err)
	}
	kill()
	waitLog(true)
}
