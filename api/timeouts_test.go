package api

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// slowRuntime's run command takes a while.
type slowRuntime struct {
	StaticRuntime
	took time.Duration
}

func (r slowRuntime) RunCommand(ctx context.Context, _, _ string) (string, string, int, error) {
	select {
	case <-time.After(r.took):
		return "done\n", "", 0, nil
	case <-ctx.Done():
		return "", "", 1, ctx.Err()
	}
}

// serveTCP serves s on a loopback port with short timeouts.
func serveTCP(t *testing.T, s *Server) string {
	t.Helper()
	s.ReadHeaderTimeout, s.BodyTimeout, s.IdleTimeout = 300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// closedWithin reports whether the server closes c (after any answer)
// within d.
func closedWithin(t *testing.T, c net.Conn, d time.Duration) (string, bool) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return string(got), false
	}
	return string(got), true
}

func TestAPIConnectionTimeouts(t *testing.T) {
	s := memServer(t, slowRuntime{took: 1500 * time.Millisecond})
	addr := serveTCP(t, s)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	q := "?api-version=2024-03-01"

	t.Run("headers that never end", func(t *testing.T) {
		c := dial()
		io.WriteString(c, "GET /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups"+q+" HTTP/1.1\r\nHost: x\r\n")
		if _, closed := closedWithin(t, c, 5*time.Second); !closed {
			t.Fatal("a connection stalled in its headers stayed open")
		}
	})
	t.Run("a body that never ends", func(t *testing.T) {
		c := dial()
		io.WriteString(c, "PUT "+vnetPath+q+" HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"properties\":")
		got, closed := closedWithin(t, c, 5*time.Second)
		if !closed || !strings.Contains(got, "400 Bad Request") || !strings.Contains(got, "InvalidRequestContent") {
			t.Fatalf("a stalled body: closed %v, answer %q; want 400 InvalidRequestContent and close", closed, got)
		}
	})
	t.Run("an idle keep-alive connection", func(t *testing.T) {
		c := dial()
		io.WriteString(c, "GET /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups"+q+" HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET: %d", resp.StatusCode)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("idle connection: %v; want closed by the server", err)
		}
	})
	t.Run("a handler longer than the timeouts", func(t *testing.T) {
		// Positive control: the timeouts bound reading, not answering.
		hc := &http.Client{Timeout: 10 * time.Second}
		base := "http://" + addr
		req, _ := http.NewRequest("PUT", base+rg+"/Microsoft.Network/virtualNetworks/vnet"+q, strings.NewReader(vnetBody))
		resp, err := hc.Do(req)
		if err != nil || resp.StatusCode/100 != 2 {
			t.Fatalf("PUT vnet: %v %v", resp, err)
		}
		resp.Body.Close()
		body := scaleSetBody(1)
		req, _ = http.NewRequest("PUT", base+rg+"/Microsoft.Compute/virtualMachineScaleSets/web"+q, strings.NewReader(body))
		if resp, err = hc.Do(req); err != nil || resp.StatusCode/100 != 2 {
			t.Fatalf("PUT scale set: %v %v", resp, err)
		}
		resp.Body.Close()
		req, _ = http.NewRequest("POST", base+rg+"/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines/0/runCommand"+q,
			strings.NewReader(`{"commandId":"RunShellScript","script":["sleep 1"]}`))
		start := time.Now()
		resp, err = hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(out), "done") {
			t.Fatalf("run command taking %v: %d %s", time.Since(start), resp.StatusCode, out)
		}
	})
}

func TestRequestBodyLimit(t *testing.T) {
	s := memServer(t, StaticRuntime{})
	big := `{"tags":{"a":"` + strings.Repeat("x", MaxBody) + `"},` + vnetBody[1:]
	w := call(t, s, "PUT", vnetPath, big)
	if w.Code != 413 || !strings.Contains(w.Body.String(), "RequestEntityTooLarge") {
		t.Fatalf("body over MaxBody: %d %s", w.Code, w.Body.String())
	}
	if w := call(t, s, "GET", vnetPath, ""); w.Code != 404 {
		t.Fatalf("the refused body changed the state: GET answered %d", w.Code)
	}
	// Positive control: the same resource within the limit.
	if w := call(t, s, "PUT", vnetPath, `{"tags":{"a":"`+strings.Repeat("x", 1<<20)+`"},`+vnetBody[1:]); w.Code/100 != 2 {
		t.Fatalf("body within MaxBody: %d %s", w.Code, w.Body.String())
	}
}
