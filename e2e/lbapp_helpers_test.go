package e2e

// Helpers of the load-balancing and app tests (lb_test.go, apps_test.go).

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/vmss-emulator/vmss/arm"
)

// lbAppPy is a small web app the tests control from inside the instance:
//
//	GET /        "Hello from HOST (instance ID)", status from /root/app-code (default 200)
//	GET /health  status from /root/health-code (default 200); no answer while /root/health-hang exists
//	GET /rich    200 with {"ApplicationHealthState": <contents of /root/rich-state, default Healthy>}
//
// On UDP port 9999 it answers each datagram with the same greeting followed by
// the datagram. It writes its pid to /root/app.pid so that a test can kill it, and the
// client address of the last / and /health requests to /root/client-from and
// /root/health-from.
const lbAppPy = `import http.server, json, os, socket, sys, time
port = int(sys.argv[1]) if len(sys.argv) > 1 else 80
iid = os.environ.get("VMSS_INSTANCE_ID", "?")
name = socket.gethostname()
def read(path, default):
    try:
        with open(path) as f:
            return f.read().strip() or default
    except OSError:
        return default
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def do_GET(self):
        if self.path in ("/", "/health"):
            with open("/root/%s-from" % ("client" if self.path == "/" else "health"), "w") as f:
                f.write(self.client_address[0])
        if self.path == "/health" and os.path.exists("/root/health-hang"):
            time.sleep(30)
        if self.path == "/health":
            code = int(read("/root/health-code", "200"))
            body = ("health %d\n" % code).encode()
        elif self.path == "/rich":
            code = 200
            body = json.dumps({"ApplicationHealthState": read("/root/rich-state", "Healthy")}).encode()
        elif self.path == "/":
            code = int(read("/root/app-code", "200"))
            body = ("Hello from %s (instance %s)\n" % (name, iid)).encode()
        else:
            code, body = 404, b"not found\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    request_queue_size = 512
    daemon_threads = True
def udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("", 9999))
    while True:
        data, peer = u.recvfrom(2048)
        u.sendto(("Hello from %s (instance %s): " % (name, iid)).encode() + data, peer)
import threading
threading.Thread(target=udp, daemon=True).start()
with open("/root/app.pid", "w") as f:
    f.write(str(os.getpid()))
S(("", port), H).serve_forever()
`

// lbAppCommand is a CustomScript commandToExecute that installs the test app
// and runs it on port as the instance's workload.
func lbAppCommand(port int) string {
	b64 := base64.StdEncoding.EncodeToString([]byte(lbAppPy))
	return fmt.Sprintf("echo %s | base64 -d > /root/app.py && exec python3 /root/app.py %d", b64, port)
}

// lbNeedPython skips tests that run the python test app when the host has no
// system python3 (instances see the host's /usr).
func lbNeedPython(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("needs /usr/bin/python3 for the controllable test app")
	}
}

// lbKeyFile writes a fresh SSH public key for `vmss create`.
func lbKeyFile(t testing.TB) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "id_ed25519.pub")
	if err := os.WriteFile(path, ssh.MarshalAuthorizedKey(sp), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// lbCreateUp is lbCreate, then waits until every instance is probed up.
func lbCreateUp(e *Env, name string, count int, script string) string {
	e.T.Helper()
	url := lbCreate(e, name, count, script)
	lbWaitAllUp(e, name+"LB", "", name, 30*time.Second)
	return url
}

// lbCreate runs `vmss create` for a scale set with an LB rule 80 → 80 and an
// HTTP probe on /, running script in every instance, and returns the
// frontend's base URL.
func lbCreate(e *Env, name string, count int, script string, extra ...string) string {
	e.T.Helper()
	args := []string{"create", "-n", name, "--instance-count", strconv.Itoa(count), "--ssh-key-values", lbKeyFile(e.T),
		"--lb-rule-port", "80", "--disable-overprovision", "-o", "none"}
	if script != "" {
		args = append(args, "--custom-script", script)
	}
	e.MustCLI(append(args, extra...)...)
	return "http://" + lbPublicIP(e, name+"LBPublicIP") + "/"
}

// lbPublicIP returns the host address of a public IP resource.
func lbPublicIP(e *Env, name string) string {
	e.T.Helper()
	var pip struct {
		IPAddress  string `json:"ipAddress"`
		Properties struct {
			IPAddress string `json:"ipAddress"`
		} `json:"properties"`
	}
	e.JSON(&pip, "network", "public-ip", "show", "-n", name)
	addr := pip.IPAddress + pip.Properties.IPAddress
	if _, err := netip.ParseAddr(addr); err != nil {
		e.T.Fatalf("public IP %s has no address: %q", name, addr)
	}
	return addr
}

// lbView is GET .../loadBalancers/{name}/health: per rule, the backends with
// their probe state.
type lbView struct {
	Rules []struct {
		Name     string      `json:"name"`
		Frontend string      `json:"frontend"`
		Probe    string      `json:"probe"`
		Refused  int64       `json:"refused"`
		Backends []lbBackend `json:"backends"`
	} `json:"rules"`
}

type lbBackend struct {
	Name   string `json:"name"`
	Addr   string `json:"address"`
	State  string `json:"state"`
	Active int64  `json:"activeConnections"`
	Total  int64  `json:"totalConnections"`
	Probes []struct {
		Probe      string `json:"probe"`
		State      string `json:"state"`
		LastResult string `json:"lastResult"`
		OK         int    `json:"consecutiveSuccesses"`
		Fails      int    `json:"consecutiveFailures"`
		Sent       int64  `json:"probesSent"`
	} `json:"probes"`
}

// lbHealth fetches the runtime view of a load balancer through the API.
func lbHealth(e *Env, lbName string) (lbView, error) {
	var v lbView
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.Client.Do(ctx, http.MethodGet, e.Client.ResourceID("default", arm.TypeLoadBalancer, lbName)+"/health", nil, &v)
	return v, err
}

// lbStates maps backend name (the instance's namespace) → state for a rule
// ("" means the first rule).
func lbStates(e *Env, lbName, rule string) (map[string]string, error) {
	v, err := lbHealth(e, lbName)
	if err != nil {
		return nil, err
	}
	for _, r := range v.Rules {
		if rule == "" || r.Name == rule {
			out := map[string]string{}
			for _, b := range r.Backends {
				out[b.Name] = b.State
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("load balancer %s has no rule %q: %+v", lbName, rule, v)
}

// lbBackendOf returns one backend of a rule of the view.
func lbBackendOf(v lbView, rule, backend string) (lbBackend, bool) {
	for _, r := range v.Rules {
		if rule != "" && r.Name != rule {
			continue
		}
		for _, b := range r.Backends {
			if b.Name == backend {
				return b, true
			}
		}
	}
	return lbBackend{}, false
}

// lbWaitStates waits until the rule's backends are exactly want (name → state).
func lbWaitStates(e *Env, lbName, rule string, want map[string]string, timeout time.Duration) {
	e.T.Helper()
	lbWaitFor(e, lbName, rule, func() map[string]string { return want }, timeout)
}

// lbWaitAllUp waits until the rule's backends are exactly the running
// instances of set, all Up.
func lbWaitAllUp(e *Env, lbName, rule, set string, timeout time.Duration) {
	e.T.Helper()
	// Right after a daemon (re)start instances report "starting" until the
	// reconciler has seen them; a want taken then would miss them (or be
	// empty and match an empty pool at once).
	Eventually(e.T, timeout, "settled instances of "+set, func() error {
		running := 0
		for _, in := range e.Instances(set) {
			switch in.PowerState {
			case "running":
				running++
			case "stopped", "deallocated":
			default:
				return fmt.Errorf("instance %s is %s", in.InstanceID, in.PowerState)
			}
		}
		if running == 0 {
			return fmt.Errorf("no instance of %s is running", set)
		}
		return nil
	})
	lbWaitFor(e, lbName, rule, func() map[string]string { return lbAllUp(e, set) }, timeout)
}

func lbWaitFor(e *Env, lbName, rule string, wantFn func() map[string]string, timeout time.Duration) {
	e.T.Helper()
	Eventually(e.T, timeout, "backend states of "+lbName, func() error {
		want := wantFn()
		got, err := lbStates(e, lbName, rule)
		if err != nil {
			return err
		}
		if len(got) != len(want) {
			return fmt.Errorf("backends %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				return fmt.Errorf("backends %v, want %v", got, want)
			}
		}
		return nil
	})
}

// lbAllUp is want-map for lbWaitStates: every running instance of set Up.
func lbAllUp(e *Env, set string) map[string]string {
	e.T.Helper()
	want := map[string]string{}
	for _, in := range e.Instances(set) {
		if in.PowerState == "running" {
			want[in.Netns] = "Up"
		}
	}
	return want
}

var lbInstanceRE = regexp.MustCompile(`\(instance (\d+)\)`)

// lbInstanceOf extracts the instance id from the app's answer.
func lbInstanceOf(body string) string {
	m := lbInstanceRE.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

// lbHit sends one request on a new connection (optionally from a given
// loopback source address) and returns the answering instance id.
func lbHit(url string, from netip.Addr) (string, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: from.AsSlice()}
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DialContext: d.DialContext}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return lbInstanceOf(string(b)), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	id := lbInstanceOf(string(b))
	if id == "" {
		return "", fmt.Errorf("GET %s: answer names no instance: %q", url, b)
	}
	return id, nil
}

// lbCount sends n requests and counts answers per instance id; it fails the
// test on any error.
func lbCount(t testing.TB, url string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		id, err := lbHit(url, netip.Addr{})
		if err != nil {
			t.Fatalf("request %d: %v (so far %v)", i, err, got)
		}
		got[id]++
	}
	return got
}

// lbEditScaleSet changes a scale set's model by GET, edit, PUT, and waits
// for the operation.
func lbEditScaleSet(e *Env, name string, edit func(*arm.VirtualMachineScaleSet)) {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	path := e.Client.ResourceID("default", arm.TypeScaleSet, name)
	var ss arm.VirtualMachineScaleSet
	if _, err := e.Client.Do(ctx, http.MethodGet, path, nil, &ss); err != nil {
		e.T.Fatal(err)
	}
	edit(&ss)
	op, err := e.Client.Do(ctx, http.MethodPut, path, &ss, nil)
	if err == nil {
		err = e.Client.Wait(ctx, op, nil)
	}
	if err != nil {
		e.T.Fatalf("update scale set %s: %v", name, err)
	}
}

// lbLoad sends requests on new connections from workers goroutines until
// stopped, and records each result.
type lbLoad struct {
	mu      sync.Mutex
	results []lbResult
	stop    chan struct{}
	wg      sync.WaitGroup
}

type lbResult struct {
	start    time.Time
	instance string
	err      error
}

func lbStartLoad(url string, workers int) *lbLoad {
	l := &lbLoad{stop: make(chan struct{})}
	for range workers {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				start := time.Now()
				id, err := lbHit(url, netip.Addr{})
				l.mu.Lock()
				l.results = append(l.results, lbResult{start: start, instance: id, err: err})
				l.mu.Unlock()
			}
		})
	}
	return l
}

// Stop ends the load and returns every result.
func (l *lbLoad) Stop() []lbResult {
	close(l.stop)
	l.wg.Wait()
	return l.results
}

// lbWithLoad runs f while workers send requests to url (a new connection
// each), starting the load 300 ms before f, and returns every result. The
// load stops when f returns or fails the test.
func lbWithLoad(url string, workers int, f func()) (rs []lbResult) {
	load := lbStartLoad(url, workers)
	defer func() { rs = load.Stop() }()
	time.Sleep(300 * time.Millisecond)
	f()
	return nil
}

// lbSummary counts results per instance and lists the errors (at most 10).
func lbSummary(rs []lbResult) (per map[string]int, errs []string, nerr int) {
	per = map[string]int{}
	for _, r := range rs {
		if r.err != nil {
			nerr++
			if len(errs) < 10 {
				errs = append(errs, r.start.Format("15:04:05.000")+" "+r.err.Error())
			}
			continue
		}
		per[r.instance]++
	}
	return per, errs, nerr
}

// lbMetricsAddr picks a free loopback port for --metrics-addr.
func lbMetricsAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// lbScrape returns the metrics text of the daemon.
func lbScrape(addr string) (string, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// lbMetric finds the value of the sample whose name and labels all appear
// in line (labels given as `key="value"`).
func lbMetric(text, name string, labels ...string) (float64, bool) {
next:
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue next
			}
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		return v, err == nil
	}
	return 0, false
}

// lbInstanceView returns the raw instance view of a scale-set instance.
func lbInstanceView(e *Env, set, id string) string {
	e.T.Helper()
	var raw json.RawMessage
	if _, err := e.Client.Do(context.Background(), http.MethodGet, e.Client.ResourceID("default", arm.TypeScaleSet, set)+"/virtualMachines/"+id+"/instanceView", nil, &raw); err != nil {
		e.T.Fatal(err)
	}
	return string(raw)
}

// lbHasStatus reports whether an instance view has a status with code.
func lbHasStatus(view, code string) bool {
	var v struct {
		Statuses []struct {
			Code string `json:"code"`
		} `json:"statuses"`
	}
	if json.Unmarshal([]byte(view), &v) != nil {
		return false
	}
	for _, s := range v.Statuses {
		if strings.EqualFold(s.Code, code) {
			return true
		}
	}
	return false
}
