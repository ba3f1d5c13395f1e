package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/nsnet"
)

// TestLBAfterGracefulRestart: stopping the daemon with SIGTERM leaves the
// instances' apps running, as stopping a hypervisor's management plane
// leaves VMs running; the restarted daemon adopts them, runs again a
// workload that died meanwhile, and the load balancer serves every request
// once the restart is complete.
func TestLBAfterGracefulRestart(t *testing.T) {
	e := Start(t, Options{ProbeScale: "0.05"})
	url := lbCreate(e, "web", 3, webapp)
	lbWaitAllUp(e, "webLB", "", "web", 60*time.Second)
	insts := e.Instances("web")

	stopDaemon(t, e, syscall.SIGTERM)
	for _, in := range insts {
		if err := appAnswers(in.Netns, in.PrivateIPAddress); err != nil {
			t.Errorf("instance %s's app after the daemon stopped: %v", in.InstanceID, err)
		}
	}
	// One workload dies while the daemon is away: the next start runs it again.
	victim := insts[1]
	procs := recordedWorkloads(t, e, victim.Netns)
	if len(procs) == 0 {
		t.Fatalf("no workload recorded for %s", victim.Netns)
	}
	for _, pid := range procs {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	Eventually(t, 10*time.Second, "the killed app stops answering", func() error {
		if appAnswers(victim.Netns, victim.PrivateIPAddress) == nil {
			return fmt.Errorf("still answering")
		}
		return nil
	})

	e.Serve()
	lbWaitAllUp(e, "webLB", "", "web", 60*time.Second)
	rs := lbWithLoad(url, 4, func() { time.Sleep(2 * time.Second) })
	per, errs, nerr := lbSummary(rs)
	if nerr != 0 || len(rs) == 0 {
		t.Fatalf("after the restart: %d of %d requests failed: %v", nerr, len(rs), errs)
	}
	for _, in := range insts {
		if per[in.InstanceID] == 0 {
			t.Errorf("instance %s served nothing after the restart: %v", in.InstanceID, per)
		}
	}
}

// appAnswers sends GET / to the app on port 80 of an instance, from inside
// the instance's network namespace.
func appAnswers(netns, ip string) error {
	dial := nsnet.Dialer(nsnet.Path(netns))
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) { return dial(ctx, network, addr) }}}
	resp, err := c.Get("http://" + ip + ":80/")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET /: %s", resp.Status)
	}
	return nil
}

// recordedWorkloads reads the workload pids the daemon recorded for an
// instance (StateDir/host/records/<netns>.json).
func recordedWorkloads(t *testing.T, e *Env, netns string) []int {
	t.Helper()
	// The record is in one of the directories the records are spread over.
	paths, err := filepath.Glob(filepath.Join(e.StateDir, "state", "host", "records", "*", netns+".json"))
	if err != nil || len(paths) != 1 {
		t.Fatalf("record of %s: %v, %v", netns, paths, err)
	}
	b, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Workloads []struct{ Pid int } `json:"workloads"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, w := range r.Workloads {
		out = append(out, w.Pid)
	}
	return out
}
