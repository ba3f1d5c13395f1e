package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/client"
	"github.com/vmss-emulator/vmss/internal/testutil"
)

// vmssBin is the binary under test, built once by TestMain.
var vmssBin string

// binEnv names the variable that gives a re-executed test binary the vmss
// binary its parent built.
const binEnv = "VMSS_E2E_BIN"

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("e2e: skipped, needs root")
		os.Exit(0)
	}
	if bin := os.Getenv(binEnv); bin != "" { // a re-executed test (see TestFreshHostNoLeaks)
		vmssBin = bin
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "vmss-e2e-bin-")
	if err != nil {
		panic(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		panic(err)
	}
	vmssBin = filepath.Join(dir, "vmss")
	args := []string{"build", "-o", vmssBin}
	if raceDaemon {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../cmd/vmss")...)
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Println("e2e: build vmss:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// raceDaemon: the daemon under test is built with the race detector too,
// when the tests run with -race and VMSS_E2E_RACE_DAEMON=1. It is off by
// default: a race-built daemon makes the package about 5 times slower.
var raceDaemon = raceEnabled && os.Getenv("VMSS_E2E_RACE_DAEMON") == "1"

// Env is one emulator for one test.
type Env struct {
	T          testing.TB
	ID         string // random, unique per env
	Prefix     string
	Socket     string
	StateDir   string
	RuntimeDir string
	PIPRange   string // 127.a.b.0/24
	Client     *client.Client
	Flags      []string // extra flags for serve
	cmd        *exec.Cmd
	log        *testutil.SyncBuffer
}

// Options tune an Env.
type Options struct {
	ProbeScale string // --probe-interval-scale, default 0.05
	Drain      string // --drain-period, default 2s
	Extra      []string
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // crypto/rand.Read never returns an error
	return hex.EncodeToString(b)
}

// pipBase and pipCount hand every Env of this process its own public IP
// range 127.a.b.0/24 (a in 100-249): consecutive ranges from a random start,
// so tests running in parallel never share frontend addresses.
var (
	pipBase = func() uint16 {
		var b [2]byte
		rand.Read(b[:]) // crypto/rand.Read never returns an error
		return binary.BigEndian.Uint16(b[:])
	}()
	pipCount atomic.Uint32
)

func nextPIPRange() string {
	n := (uint32(pipBase) + pipCount.Add(1)) % (150 * 256)
	return fmt.Sprintf("127.%d.%d.0/24", 100+n/256, n%256)
}

// Start runs `vmss serve` for t and removes everything when t ends.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	id := randHex(3)
	e := &Env{
		T: t, ID: id,
		Prefix:     "vmsst" + id + "-",
		StateDir:   t.TempDir(),
		RuntimeDir: "/run/vmsst" + id,
		PIPRange:   nextPIPRange(),
	}
	e.Socket = filepath.Join(e.StateDir, "vmss.sock")
	if o.ProbeScale == "" {
		o.ProbeScale = "0.05"
	}
	if o.Drain == "" {
		o.Drain = "2s"
	}
	e.Flags = append([]string{"--probe-interval-scale", o.ProbeScale, "--drain-period", o.Drain}, o.Extra...)
	e.Client = client.New(e.Socket)
	e.Client.PollInterval = 20 * time.Millisecond
	e.Serve()
	t.Cleanup(e.Close)
	return e
}

// Serve starts the daemon (again, after Kill) and waits for its socket.
func (e *Env) Serve() {
	e.T.Helper()
	args := append([]string{"serve", "--socket", e.Socket, "--state-dir", filepath.Join(e.StateDir, "state"),
		"--runtime-dir", e.RuntimeDir, "--prefix", e.Prefix, "--public-ip-range", e.PIPRange, "--metrics-addr", "off", "--https-addr", "off",
		"--log-level", "debug"}, e.Flags...)
	e.log = &testutil.SyncBuffer{}
	e.cmd = exec.Command(vmssBin, args...)
	e.cmd.Stdout, e.cmd.Stderr = e.log, e.log
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := e.cmd.Start(); err != nil {
		e.T.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", e.Socket); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.T.Fatalf("daemon did not start:\n%s", e.log.String())
}

// Kill kills the daemon with SIGKILL, as a crash would.
func (e *Env) Kill() {
	if e.cmd != nil && e.cmd.Process != nil {
		_ = e.cmd.Process.Kill()
		_ = e.cmd.Wait()
		e.cmd = nil
	}
}

// Close stops the daemon, runs `vmss cleanup` and checks nothing with the
// prefix is left in the kernel.
func (e *Env) Close() {
	if e.cmd != nil && e.cmd.Process != nil {
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = e.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = e.cmd.Process.Kill()
			<-done
		}
		// Built with -race, the daemon prints what it finds to its log.
		if log := e.log.String(); raceDaemon && strings.Contains(log, "WARNING: DATA RACE") {
			i := strings.Index(log, "WARNING: DATA RACE")
			e.T.Errorf("the daemon reported a data race:\n%s", log[max(0, i-200):min(len(log), i+6000)])
		}
	}
	if e.T.Failed() && e.log != nil {
		e.T.Logf("daemon log (last 6000 bytes):\n%s", tail(e.log.String(), 6000))
	}
	out, err := exec.Command(vmssBin, "cleanup", "--force", "--prefix", e.Prefix, "--state-dir", filepath.Join(e.StateDir, "state"),
		"--runtime-dir", e.RuntimeDir, "--socket", e.Socket).CombinedOutput()
	if err != nil {
		e.T.Errorf("vmss cleanup: %v\n%s", err, out)
	}
	if left := e.Leftovers(); left != "" {
		e.T.Errorf("left behind after cleanup: %s", left)
	}
}

// Leftovers lists kernel objects and directories with the env's prefix.
func (e *Env) Leftovers() string {
	var left []string
	ents, _ := os.ReadDir("/run/netns")
	vnetPrefix := strings.TrimRight(e.Prefix, "-") + "vnet-"
	for _, en := range ents {
		if strings.HasPrefix(en.Name(), e.Prefix) || strings.HasPrefix(en.Name(), vnetPrefix) {
			left = append(left, "netns "+en.Name())
		}
	}
	if _, err := os.Stat(e.RuntimeDir); err == nil {
		left = append(left, "dir "+e.RuntimeDir)
	}
	groups, _ := filepath.Glob("/sys/fs/cgroup/*/" + strings.TrimRight(e.Prefix, "-"))
	g2, _ := filepath.Glob("/sys/fs/cgroup/" + strings.TrimRight(e.Prefix, "-"))
	for _, g := range append(groups, g2...) {
		left = append(left, "cgroup "+g)
	}
	return strings.Join(left, ", ")
}

// CLI runs the vmss command against the env's daemon.
func (e *Env) CLI(args ...string) (string, error) {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, vmssBin, append([]string{"--socket", e.Socket}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("vmss %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// MustCLI runs the CLI and fails the test on error.
func (e *Env) MustCLI(args ...string) string {
	e.T.Helper()
	out, err := e.CLI(args...)
	if err != nil {
		e.T.Fatal(err)
	}
	return out
}

// JSON runs the CLI with -o json and decodes the answer into v.
func (e *Env) JSON(v any, args ...string) {
	e.T.Helper()
	out := e.MustCLI(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.T.Fatalf("vmss %s: not JSON (%v): %s", strings.Join(args, " "), err, out)
	}
}

// Instance is the part of a list-instances element the tests read.
type Instance struct {
	InstanceID        string                        `json:"instanceId"`
	Name              string                        `json:"name"`
	OSProfile         struct{ ComputerName string } `json:"osProfile"`
	PrivateIPAddress  string                        `json:"privateIpAddress"`
	FaultDomain       int                           `json:"platformFaultDomain"`
	UpdateDomain      int                           `json:"platformUpdateDomain"`
	PowerState        string                        `json:"powerState"`
	ProvisioningState string                        `json:"provisioningState"`
	Netns             string                        `json:"netns"`
}

// Instances lists a scale set's instances through the CLI.
func (e *Env) Instances(set string, extra ...string) []Instance {
	e.T.Helper()
	var out []Instance
	e.JSON(&out, append([]string{"list-instances", "-n", set}, extra...)...)
	return out
}

// InNetns runs a program inside a network namespace (nsenter), returning its output.
func InNetns(netns string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=/run/netns/" + netns, "--"}, argv...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// HTTPGet fetches a URL with a fresh connection.
func HTTPGet(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode != 200 {
		return b.String(), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b.String(), nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// Eventually retries f until it succeeds or the timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
}

// HTTPSClient is an HTTP client that trusts the daemon's certificate
// authority (RuntimeDir/https/ca.pem), as a user's az or SDK is told to.
func (e *Env) HTTPSClient(t testing.TB) *http.Client {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(e.RuntimeDir, "https", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}
