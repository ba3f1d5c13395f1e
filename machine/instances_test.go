package machine

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/instance"
	"github.com/vmss-emulator/vmss/machine/machinetest"
	"github.com/vmss-emulator/vmss/machine/sshservice"
	"github.com/vmss-emulator/vmss/machine/workload"
	"github.com/vmss-emulator/vmss/reconcile"
)

// fakeMachine is a Machine whose instances are machinetest's fake (commands
// run as processes of the test): enough for StartInstance of an instance
// that was built, not for building or stopping one.
func fakeMachine(t *testing.T, root string, grace time.Duration) *Machine {
	t.Helper()
	fake := &machinetest.Instances{Root: root, Specs: map[string]instance.Spec{
		"web_0": {Name: "web_0", Hostname: "web000000", AdminUser: "azureuser", Shell: "/bin/sh"},
	}}
	m := &Machine{
		records: records{dir: filepath.Join(root, "records")},
		work:    workload.New(workload.Config{Instances: fake, LogDir: filepath.Join(root, "logs"), WorkloadGrace: grace}),
		ssh:     sshservice.New(sshservice.Config{Instances: fake, KeyDir: filepath.Join(root, "hostkeys")}),
	}
	m.log = slog.New(slog.DiscardHandler)
	t.Cleanup(func() { m.ssh.Close(); m.work.Close() })
	return m
}

// stopFake leaves the instance as StopInstance does: SSH stopped, its
// processes killed, its workload cleared from the record.
func stopFake(t *testing.T, m *Machine, netns string) {
	t.Helper()
	m.ssh.Stop(netns)
	r, _ := m.records.read(netns)
	for _, p := range r.Workloads {
		_ = syscall.Kill(p.Pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(30 * time.Second)
	for anyAlive(r.Workloads) {
		if time.Now().After(deadline) {
			t.Fatalf("workload %v still alive after SIGKILL", r.Workloads)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := m.records.update(netns, func(r *record) { r.WorkKey, r.Workloads = "", nil }); err != nil {
		t.Fatal(err)
	}
}

func cse(name, cmd string) arm.Extension {
	settings, _ := json.Marshal(map[string]string{"commandToExecute": cmd})
	return arm.Extension{Name: name, Properties: arm.ExtensionP{Publisher: "Microsoft.Azure.Extensions", Type: "CustomScript", Settings: settings}}
}

// A start of a stopped instance runs its extensions again, as a VM's
// services start when it boots, and the command that was its workload when
// the same build and model last ran is the workload again as soon as it
// started: the start does not wait the workload grace to tell it again.
// The steps before it still run to their end; an upgraded model's
// extensions are told anew.
func TestStartAfterStopDoesNotWaitForAKnownWorkload(t *testing.T) {
	root := t.TempDir()
	in := reconcile.InstanceSpec{Netns: "web_0", VMName: "web_0", AdminUser: "azureuser", BuildGen: 1, RestartGen: 0, ModelGen: 1,
		Extensions: []arm.Extension{cse("prep", "echo prepared >> prep.txt"), cse("web", "exec sleep 600")}}
	t.Cleanup(func() {
		if r, ok := (&records{dir: filepath.Join(root, "records")}).read("web_0"); ok {
			for _, p := range r.Workloads {
				_ = syscall.Kill(p.Pid, syscall.SIGKILL)
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The first start tells what each command is: prep ends, web is still
	// running after the grace.
	m := fakeMachine(t, root, 200*time.Millisecond)
	if err := m.StartInstance(ctx, in, false); err != nil {
		t.Fatal(err)
	}
	first, _ := m.records.read("web_0")
	if len(first.Workloads) != 1 || first.Workloads[0].Step != "web" || !first.Workloads[0].Alive() {
		t.Fatalf("workloads after the first start = %+v, want the web step's process", first.Workloads)
	}
	stopFake(t, m, "web_0")

	// The daemon now waits ten minutes before an extension's command counts
	// as a workload: a start that waited for it would end with the context.
	m = fakeMachine(t, root, 10*time.Minute)
	sctx, scancel := context.WithTimeout(ctx, time.Minute)
	defer scancel()
	if err := m.StartInstance(sctx, in, false); err != nil {
		t.Fatalf("start after stop: %v (it waited for the known workload)", err)
	}
	again, _ := m.records.read("web_0")
	if len(again.Workloads) != 1 || again.Workloads[0].Step != "web" || !again.Workloads[0].Alive() || again.Workloads[0] == first.Workloads[0] {
		t.Fatalf("workloads after the start = %+v, want a new process of the web step (first %+v)", again.Workloads, first.Workloads)
	}
	if !m.ssh.Serving("web_0") {
		t.Error("not serving SSH after the start")
	}
	data, err := os.ReadFile(filepath.Join(root, "web_0", "root", "custom-script", "download", "0", "prep.txt"))
	if err != nil || strings.Count(string(data), "prepared") != 2 {
		t.Errorf("prep.txt = %q, %v: the step before the workload did not run again to its end", data, err)
	}
	if len(again.Extensions) != 2 || !strings.Contains(again.Extensions[1].Statuses[0].Message, "started again as the instance's workload") {
		t.Errorf("extension views after the start = %+v", again.Extensions)
	}

	// Positive control: an upgraded model's extensions run as on the first
	// start, and the web step's command is waited for until the grace says
	// it is the workload.
	stopFake(t, m, "web_0")
	m = fakeMachine(t, root, 200*time.Millisecond)
	in.ModelGen = 2
	if err := m.StartInstance(ctx, in, false); err != nil {
		t.Fatal(err)
	}
	up, _ := m.records.read("web_0")
	if len(up.Extensions) != 2 || !strings.Contains(up.Extensions[1].Statuses[0].Message, "still running as the instance's workload") {
		t.Errorf("extension views after an upgrade = %+v, want the workload told after the grace", up.Extensions)
	}
	if len(up.Workloads) != 1 || up.Workloads[0].Step != "web" || up.RanFor != "1/2" {
		t.Errorf("record after an upgrade: workloads %+v, ran for %q", up.Workloads, up.RanFor)
	}
}
