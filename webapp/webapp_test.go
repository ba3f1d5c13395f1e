package webapp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	h := Handler("web000002", "2")
	for _, tc := range []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/", 200, "Hello from web000002 (instance 2)\n"},
		{"HEAD", "/", 200, ""},
		{"GET", "/health", 200, "ok\n"},
		{"GET", "/nope", 404, "404 page not found\n"},
		{"POST", "/", 405, "method not allowed\n"},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.code || rec.Body.String() != tc.body {
				t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tc.code, tc.body)
			}
			if tc.method == "HEAD" && rec.Header().Get("Content-Length") != "34" {
				t.Fatalf("HEAD Content-Length %q", rec.Header().Get("Content-Length"))
			}
		})
	}
}

// TestServeKeepAlive sends several requests on one TCP connection.
func TestServeKeepAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, "web000000", "0") }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := range 3 {
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on the same connection: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "Hello from web000000 (instance 0)\n" || resp.Close {
			t.Fatalf("request %d: %q close=%v", i, b, resp.Close)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
}

func TestRunListenError(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	err := Run(context.Background(), ln.Addr().String(), "w", "1")
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("Run on a taken port: %v", err)
	}
}

// TestMain lets TestRSS start this binary as a bare webapp process.
func TestMain(m *testing.M) {
	if addr := os.Getenv("VMSS_WEBAPP_CHILD"); addr != "" {
		if err := Run(context.Background(), addr, "web000001", "1"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRSS runs the app as its own process, serves 200 requests and reports
// its resident memory (a generous bound guards against regressions).
func TestRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "VMSS_WEBAPP_CHILD="+addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var resp *http.Response
	var err error
	for i := 0; i < 200; i++ {
		if resp, err = http.Get("http://" + addr + "/"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			t.Logf("webapp RSS after 200 requests: %d KiB", kb)
			if kb > 40<<10 {
				t.Fatalf("webapp RSS %d KiB, want well under 40 MiB", kb)
			}
			return
		}
	}
	t.Fatal("no VmRSS in /proc status")
}
