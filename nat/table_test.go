package nat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/proxy"

	"github.com/vmss-emulator/vmss/nat/natport"
)

// tagServer answers every TCP connection with tag + what it reads, per
// line, and serves UDP with "tag:" + datagram on the same port.
func tagServer(t *testing.T, ip, tag string) netip.AddrPort {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					c.Write(append([]byte(tag+":"), buf[:n]...))
				}
			}()
		}
	}()
	ap := netip.MustParseAddrPort(ln.Addr().String())
	uc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uc.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := uc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			uc.WriteToUDPAddrPort(append([]byte(tag+":"), buf[:n]...), from)
		}
	}()
	return ap
}

// freePort finds a port free for TCP and UDP on ip.
func freePort(t *testing.T, ip string) netip.AddrPort {
	for range 50 {
		ln, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		ap := netip.MustParseAddrPort(ln.Addr().String())
		ln.Close()
		if uc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap)); err == nil {
			uc.Close()
			return ap
		}
	}
	t.Fatal("no free port")
	return netip.AddrPort{}
}

func ask(t *testing.T, c net.Conn, msg string) string {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("reply to %q: %v", msg, err)
	}
	return string(buf[:n])
}

func dial(t *testing.T, network string, ap netip.AddrPort) net.Conn {
	t.Helper()
	c, err := net.Dial(network, ap.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestTableApply(t *testing.T) {
	goroutines := runtime.NumGoroutine()
	be0 := tagServer(t, "127.0.0.1", "vm0")
	be1 := tagServer(t, "127.0.0.1", "vm1")
	pubA := freePort(t, "127.77.0.4")
	pubB := freePort(t, "127.77.0.4")
	pubC := freePort(t, "127.77.0.4")
	var tbl Table
	ctx := context.Background()
	m0 := Mapping{Name: "natpool.0", Public: pubA, Backend: be0}
	m1 := Mapping{Name: "natpool.1", Public: pubB, Backend: be1, Protocol: All}
	if err := tbl.Apply(ctx, []Mapping{m0, m1}); err != nil {
		t.Fatal(err)
	}
	c0 := dial(t, "tcp", pubA)
	c1 := dial(t, "tcp", pubB)
	if got := ask(t, c0, "a"); got != "vm0:a" {
		t.Fatalf("pubA → %q", got)
	}
	if got := ask(t, c1, "b"); got != "vm1:b" {
		t.Fatalf("pubB → %q", got)
	}
	u1 := dial(t, "udp", pubB)
	if got := ask(t, u1, "u"); got != "vm1:u" {
		t.Fatalf("udp pubB → %q", got)
	}

	// Idempotent: the same desired state changes nothing, flows survive.
	if err := tbl.Apply(ctx, []Mapping{m0, m1}); err != nil {
		t.Fatal(err)
	}
	if got := ask(t, c0, "again"); got != "vm0:again" {
		t.Fatalf("after idempotent Apply: %q", got)
	}

	// Remove m1, point m0 at vm1, add m2: the established c0 stays on vm0,
	// new connections to pubA go to vm1, c1 is reset.
	m0b := m0
	m0b.Backend = be1
	m2 := Mapping{Name: "rule.ssh", Public: pubC, Backend: be0}
	if err := tbl.Apply(ctx, []Mapping{m0b, m2}); err != nil {
		t.Fatal(err)
	}
	if got := ask(t, c0, "still"); got != "vm0:still" {
		t.Fatalf("established flow after Apply: %q", got)
	}
	if got := ask(t, dial(t, "tcp", pubA), "new"); got != "vm1:new" {
		t.Fatalf("new connection after backend change: %q", got)
	}
	if got := ask(t, dial(t, "tcp", pubC), "c"); got != "vm0:c" {
		t.Fatalf("added mapping: %q", got)
	}
	c1.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c1.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("flow of a removed mapping: %v, want ECONNRESET", err)
	}
	if _, err := net.Dial("tcp", pubB.String()); err == nil {
		t.Fatal("removed mapping still accepts")
	}

	snap := tbl.Snapshot()
	if len(snap) != 2 || snap[0].Public.Compare(snap[1].Public) > 0 {
		t.Fatalf("snapshot %+v, want 2 entries ordered by public address", snap)
	}
	for _, s := range snap {
		if s.Public == pubA && (s.Name != "natpool.0" || s.Backend != be1 || s.Connections != 2 || s.Active != 2 || s.BytesIn == 0) {
			t.Fatalf("snapshot of %s: %+v", pubA, s)
		}
	}

	if err := tbl.Close(); err != nil {
		t.Fatal(err)
	}
	// Every goroutine of the table is gone (the test servers' remain).
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines+6 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines+6 {
		t.Fatalf("%d goroutines after Close, started with %d (+6 for test servers)", n, goroutines)
	}
}

func TestTablePortInUse(t *testing.T) {
	be := tagServer(t, "127.0.0.1", "vm0")
	taken, err := net.Listen("tcp", "127.77.0.4:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenAP := netip.MustParseAddrPort(taken.Addr().String())
	ok := freePort(t, "127.77.0.4")
	var tbl Table
	defer tbl.Close()
	err = tbl.Apply(context.Background(), []Mapping{
		{Name: "natpool.0", Public: ok, Backend: be},
		{Name: "natpool.1", Public: takenAP, Backend: be},
	})
	var inUse *proxy.AddrInUseError
	if !errors.As(err, &inUse) {
		t.Fatalf("err %v, want *proxy.AddrInUseError", err)
	}
	want := fmt.Sprintf("%s/tcp for inbound NAT natpool.1 is already in use by another program; free it (`ss -tlnp 'sport = :%d'` shows the owner) or move the public IP to another loopback address", takenAP, takenAP.Port())
	if err.Error() != want {
		t.Fatalf("message\n%s\nwant\n%s", err, want)
	}
	// Nothing changed: the good mapping was not left listening.
	if len(tbl.Snapshot()) != 0 {
		t.Fatalf("snapshot after failed Apply: %+v", tbl.Snapshot())
	}
	if c, err := net.Dial("tcp", ok.String()); err == nil {
		c.Close()
		t.Fatalf("%s listening after a failed Apply", ok)
	}
}

func TestTableRejectsBadInput(t *testing.T) {
	var tbl Table
	defer tbl.Close()
	p := netip.MustParseAddrPort("127.77.0.4:50000")
	b := netip.MustParseAddrPort("127.0.0.1:22")
	for name, ms := range map[string][]Mapping{
		"duplicate public": {{Name: "a", Public: p, Backend: b}, {Name: "b", Public: p, Backend: b, Protocol: All}},
		"zero port":        {{Name: "a", Public: netip.MustParseAddrPort("127.77.0.4:0"), Backend: b}},
		"bad protocol":     {{Name: "a", Public: p, Backend: b, Protocol: "Icmp"}},
	} {
		if err := tbl.Apply(context.Background(), ms); err == nil || !strings.Contains(err.Error(), "nat: mapping") && !strings.Contains(err.Error(), "both claim") {
			t.Errorf("%s: err %v", name, err)
		}
	}
	if len(tbl.Snapshot()) != 0 {
		t.Fatal("bad input changed the table")
	}
}

func TestTableIdleTimeoutReset(t *testing.T) {
	be := tagServer(t, "127.0.0.1", "vm0")
	pubA := freePort(t, "127.77.0.4")
	var tbl Table
	defer tbl.Close()
	if err := tbl.Apply(context.Background(), []Mapping{{Name: "n", Public: pubA, Backend: be, IdleTimeout: 100 * time.Millisecond, EnableTCPReset: true}}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, "tcp", pubA)
	ask(t, c, "x")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("idle NAT flow: %v, want ECONNRESET", err)
	}
}

func TestPoolMappings(t *testing.T) {
	pool := natport.Pool{Name: "natpool", FrontendIP: netip.MustParseAddr("127.77.0.4"), Protocol: Tcp,
		FrontendPortRangeStart: 50000, FrontendPortRangeEnd: 50119, BackendPort: 22}
	ports := map[int]int{0: 50000, 1: 50001, 2: 50002}
	ips := map[int]netip.Addr{0: netip.MustParseAddr("10.0.0.4"), 1: netip.MustParseAddr("10.0.0.5")}
	got := PoolMappings(pool, ports, func(id int) (netip.Addr, bool) { ip, ok := ips[id]; return ip, ok })
	if len(got) != 2 ||
		got[0].Name != "natpool.0" || got[0].Public.String() != "127.77.0.4:50000" || got[0].Backend.String() != "10.0.0.4:22" ||
		got[1].Name != "natpool.1" || got[1].Public.String() != "127.77.0.4:50001" || got[1].Backend.String() != "10.0.0.5:22" {
		t.Fatalf("got %+v", got)
	}
}
