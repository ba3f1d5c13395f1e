package e2e

// End-to-end tests of apps inside instances: the CustomScript extension
// (root, output in the instance view and the log, fileUris,
// provisionAfterExtensions, a long-running workload restarted with the
// instance) and the Application Health extension (binary and rich modes).

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/arm"
)

// appExt builds an extension of the model.
func appExt(t testing.TB, name, publisher, typ, version string, settings any, after ...string) arm.Extension {
	t.Helper()
	raw, err := json.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	return arm.Extension{Name: name, Properties: arm.ExtensionP{Publisher: publisher, Type: typ, TypeHandlerVersion: version,
		Settings: raw, ProvisionAfterExtensions: after}}
}

// appSetModel gives a scale set (created empty) its extensions and capacity.
func appSetModel(e *Env, name string, count int, exts ...arm.Extension) {
	e.T.Helper()
	lbEditScaleSet(e, name, func(ss *arm.VirtualMachineScaleSet) {
		ss.Sku.Capacity = arm.IntPtr(int64(count))
		ss.Properties.VirtualMachineProfile.ExtensionProfile = &arm.ExtensionProfile{Extensions: exts}
	})
}

// appView is the part of an instance view these tests read.
type appView struct {
	Extensions []struct {
		Name     string `json:"name"`
		Statuses []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"statuses"`
	} `json:"extensions"`
	VMHealth *struct {
		Status struct {
			Code string `json:"code"`
		} `json:"status"`
	} `json:"vmHealth"`
}

func appInstanceView(e *Env, set, id string) appView {
	e.T.Helper()
	var v appView
	if err := json.Unmarshal([]byte(lbInstanceView(e, set, id)), &v); err != nil {
		e.T.Fatal(err)
	}
	return v
}

func (v appView) message(ext string) string {
	for _, x := range v.Extensions {
		if x.Name == ext && len(x.Statuses) > 0 {
			return x.Statuses[0].Code + ": " + x.Statuses[0].Message
		}
	}
	return ""
}

func (v appView) health() string {
	if v.VMHealth == nil {
		return ""
	}
	return v.VMHealth.Status.Code
}

var appPidRE = regexp.MustCompile(`workload, pid (\d+)`)

// CustomScript runs as root, in provisionAfterExtensions order, with fileUris
// beside the command and its output in the instance view and the instance's
// log; a long-running command is the instance's workload (it serves through
// the load balancer) and is started again by `vmss restart`.
func TestAppsCustomScript(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{ProbeScale: "0.05"})
	url := lbCreate(e, "app", 0, "")
	marker := filepath.Join(t.TempDir(), "marker.txt")
	if err := os.WriteFile(marker, []byte("marker-"+e.ID+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Listed out of order on purpose: web waits for prep, health for web.
	appSetModel(e, "app", 2,
		appExt(t, "health", "Microsoft.ManagedServices", "ApplicationHealthLinux", "1.0",
			map[string]any{"protocol": "http", "port": 80, "requestPath": "/health", "intervalInSeconds": 5}, "web"),
		appExt(t, "web", "Microsoft.Azure.Extensions", "CustomScript", "2.1",
			map[string]any{"fileUris": []string{marker}, "commandToExecute": "cat marker.txt && echo web >> /root/order && exec vmss webapp --addr :80"}, "prep"),
		appExt(t, "prep", "Microsoft.OSTCExtensions", "CustomScriptForLinux", "1.5",
			map[string]any{"commandToExecute": "echo uid=$(id -u) user=$(id -un) && echo prep >> /root/order"}),
	)
	lbWaitAllUp(e, "appLB", "", "app", 30*time.Second)
	got := lbCount(t, url, 10)
	if got["0"] != 5 || got["1"] != 5 {
		t.Fatalf("the CustomScript workload answers through the LB: got %v, want 5 each", got)
	}

	ins := e.Instances("app")
	var v appView
	Eventually(t, 20*time.Second, "vmHealth healthy", func() error {
		v = appInstanceView(e, "app", "0")
		if v.health() != "HealthState/healthy" {
			return fmt.Errorf("vmHealth %q", v.health())
		}
		return nil
	})
	var names []string
	for _, x := range v.Extensions {
		names = append(names, x.Name)
	}
	if strings.Join(names, ",") != "prep,web,health" {
		t.Errorf("instance view lists extensions %v, want them in provisioning order prep,web,health", names)
	}
	if m := v.message("prep"); !strings.Contains(m, "ProvisioningState/succeeded") || !strings.Contains(m, "uid=0 user=root") {
		t.Errorf("prep: want success with its output showing root, got %q", m)
	}
	webMsg := v.message("web")
	if !strings.Contains(webMsg, "marker-"+e.ID) || !appPidRE.MatchString(webMsg) {
		t.Errorf("web: want the fileUris file read from the working directory and a running workload, got %q", webMsg)
	}
	if order := e.runIn("app", "0", "cat /root/order"); order != "prep\nweb" {
		t.Errorf("order of CustomScript runs: %q, want prep then web", order)
	}
	log, err := os.ReadFile(filepath.Join(e.StateDir, "state", "host", "logs", ins[0].Netns, "prep.log"))
	if err != nil || !strings.Contains(string(log), "uid=0 user=root") {
		t.Errorf("the instance's log of prep: %v: %q", err, log)
	}

	// Restart instance 0: the extensions run again in order and the workload
	// is a new process that serves again.
	pid := appPidRE.FindStringSubmatch(webMsg)[1]
	e.MustCLI("restart", "-n", "app", "--instance-ids", "0", "-o", "none")
	lbWaitAllUp(e, "appLB", "", "app", 30*time.Second)
	if order := e.runIn("app", "0", "cat /root/order"); order != "prep\nweb\nprep\nweb" {
		t.Errorf("after restart the order file is %q, want prep, web twice", order)
	}
	m := appPidRE.FindStringSubmatch(appInstanceView(e, "app", "0").message("web"))
	if m == nil || m[1] == pid {
		t.Errorf("after restart the workload pid is %v, was %s: want a new process", m, pid)
	}
	got = lbCount(t, url, 10)
	if got["0"] != 5 || got["1"] != 5 {
		t.Fatalf("after restart: got %v, want 5 each", got)
	}
	if e.runIn("app", "1", "cat /root/order") != "prep\nweb" {
		t.Errorf("instance 1 ran its extensions again though only 0 was restarted")
	}
}

// The Application Health extension reports vmHealth like Azure's: binary mode
// (HTTP 200 healthy, anything else unhealthy) and rich mode (the
// ApplicationHealthState of a 2xx JSON answer).
func TestAppsHealthExtensionModes(t *testing.T) {
	t.Parallel()
	lbNeedPython(t)
	e := Start(t, Options{})
	for _, set := range []string{"bin", "rich"} {
		lbCreate(e, set, 0, "")
		path := "/health"
		if set == "rich" {
			path = "/rich"
		}
		appSetModel(e, set, 1,
			appExt(t, "app", "Microsoft.Azure.Extensions", "CustomScript", "2.1", map[string]any{"commandToExecute": lbAppCommand(80)}),
			appExt(t, "health", "Microsoft.ManagedServices", "ApplicationHealthLinux", "1.0",
				map[string]any{"protocol": "http", "port": 80, "requestPath": path, "intervalInSeconds": 5, "numberOfProbes": 1}, "app"))
	}
	want := func(set, code string) {
		t.Helper()
		t0 := time.Now()
		defer func() { t.Logf("%s %s after %v", set, code, time.Since(t0)) }()
		Eventually(t, 20*time.Second, set+" reports "+code, func() error {
			if h := appInstanceView(e, set, "0").health(); h != code {
				return fmt.Errorf("vmHealth %q", h)
			}
			return nil
		})
	}
	want("bin", "HealthState/healthy")
	want("rich", "HealthState/healthy")

	// Binary mode: a 500 is unhealthy, 200 healthy again.
	e.runIn("bin", "0", "echo 500 > /root/health-code")
	want("bin", "HealthState/unhealthy")
	e.runIn("bin", "0", "echo 200 > /root/health-code")
	want("bin", "HealthState/healthy")

	// Rich mode: the answer stays 200; the state in the body decides.
	e.runIn("rich", "0", "echo Unhealthy > /root/rich-state")
	want("rich", "HealthState/unhealthy")
	e.runIn("rich", "0", "echo Healthy > /root/rich-state")
	want("rich", "HealthState/healthy")
}
