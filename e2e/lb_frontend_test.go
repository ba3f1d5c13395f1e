package e2e

// End-to-end tests of frontends and rules beyond the public TCP one: an
// internal load balancer, source-IP affinity, a UDP rule.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/arm"
)

// An internal load balancer (frontend on a private IP of the subnet) answers
// inside the VNET (jumpbox, instances) and has nothing on the host.
func TestLBInternal(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{ProbeScale: "0.05"})
	pubURL := lbCreate(e, "web", 3, webapp)
	e.MustCLI("network", "lb", "create", "-n", "ilb", "--vnet-name", "webVNET", "--subnet", "webSubnet", "--backend-pool-name", "ipool", "-o", "none")
	e.MustCLI("network", "lb", "probe", "create", "--lb-name", "ilb", "-n", "p80", "--protocol", "Tcp", "--port", "80", "--interval", "5", "-o", "none")
	e.MustCLI("network", "lb", "rule", "create", "--lb-name", "ilb", "-n", "r8080", "--frontend-port", "8080", "--backend-port", "80", "--probe-name", "p80", "-o", "none")
	ctx := context.Background()
	var lbRes arm.LoadBalancer
	if _, err := e.Client.Do(ctx, http.MethodGet, e.Client.ResourceID("default", arm.TypeLoadBalancer, "ilb"), nil, &lbRes); err != nil {
		t.Fatal(err)
	}
	front := lbRes.Properties.FrontendIPConfigurations[0].Properties.PrivateIPAddress
	fa, err := netip.ParseAddr(front)
	if err != nil || !netip.MustParsePrefix("10.0.0.0/24").Contains(fa) {
		t.Fatalf("internal frontend address %q is not in webSubnet", front)
	}

	// The scale set joins the internal pool too (GET, add the pool, PUT).
	lbEditScaleSet(e, "web", func(ss *arm.VirtualMachineScaleSet) {
		ic := &ss.Properties.VirtualMachineProfile.NetworkProfile.NetworkInterfaceConfigurations[0].Properties.IPConfigurations[0].Properties
		ic.LoadBalancerBackendAddressPools = append(ic.LoadBalancerBackendAddressPools,
			arm.SubResource{ID: e.Client.ResourceID("default", arm.TypeLoadBalancer, "ilb") + "/backendAddressPools/ipool"})
	})
	lbWaitAllUp(e, "ilb", "r8080", "web", 30*time.Second)

	e.MustCLI("vm", "create", "-n", "jumpbox", "--vnet-name", "webVNET", "--subnet", "webSubnet", "--public-ip-address", "jbpip",
		"--ssh-key-values", lbKeyFile(t), "-o", "none")
	jb := e.Prefix + "default-jumpbox"
	if _, err := os.Stat("/run/netns/" + jb); err != nil {
		t.Fatalf("jumpbox namespace: %v", err)
	}
	iurl := "http://" + net.JoinHostPort(front, "8080") + "/"
	seen := map[string]int{}
	for i := 0; i < 6; i++ {
		out, err := InNetns(jb, "curl", "-sS", "-m", "5", iurl)
		if err != nil {
			t.Fatalf("curl %s from the jumpbox: %v: %s", iurl, err, out)
		}
		seen[lbInstanceOf(out)]++
	}
	if seen["0"] != 2 || seen["1"] != 2 || seen["2"] != 2 {
		t.Errorf("internal LB from the jumpbox: got %v, want 2 each", seen)
	}
	// An instance reaches the internal frontend too, itself included.
	for i := 0; i < 3; i++ {
		if out, err := InNetns(e.Instances("web")[0].Netns, "curl", "-sS", "-m", "5", iurl); err != nil || lbInstanceOf(out) == "" {
			t.Fatalf("curl %s from instance 0: %v: %s", iurl, err, out)
		}
	}

	// Not from the host: no host interface has the address and no host
	// socket listens on it (no traffic is sent to a private address from the
	// host), and the public frontend has no port 8080.
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr() == fa {
			t.Errorf("the host has the internal frontend address %s on an interface", fa)
		}
	}
	if lbHostListens(t, fa, 8080) {
		t.Errorf("a socket in the host namespace listens on %s:8080", fa)
	}
	pub := strings.TrimSuffix(strings.TrimPrefix(pubURL, "http://"), "/")
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(pub, "8080"), 2*time.Second); err == nil {
		c.Close()
		t.Errorf("the public frontend %s answers on port 8080", pub)
	}
	if _, err := lbHit(pubURL, netip.Addr{}); err != nil {
		t.Errorf("public rule still answers: %v", err)
	}
}

// lbHostListens reports whether a TCP socket of the host namespace listens on
// addr:port (from /proc/net/tcp).
func lbHostListens(t testing.TB, addr netip.Addr, port int) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	a := addr.As4()
	want := fmt.Sprintf("%02X%02X%02X%02X:%04X", a[3], a[2], a[1], a[0], port)
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == want && f[3] == "0A" {
			return true
		}
	}
	return false
}

// SourceIP distribution keeps a client address on one backend; when a
// backend leaves, only its clients move.
func TestLBSourceIPAffinity(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{ProbeScale: "0.05"})
	url := lbCreate(e, "web", 3, webapp)
	e.MustCLI("network", "lb", "rule", "create", "--lb-name", "webLB", "-n", "rule80", "--frontend-port", "80", "--backend-port", "80",
		"--probe-name", "httpProbe", "--load-distribution", "SourceIP", "-o", "none")
	lbWaitAllUp(e, "webLB", "", "web", 30*time.Second)

	clients := make([]netip.Addr, 24)
	for i := range clients {
		clients[i] = netip.AddrFrom4([4]byte{127, 0, 0, byte(20 + i)})
	}
	home := func() map[netip.Addr]string {
		out := map[netip.Addr]string{}
		for _, c := range clients {
			for j := 0; j < 4; j++ {
				id, err := lbHit(url, c)
				if err != nil {
					t.Fatalf("from %s: %v", c, err)
				}
				if prev, ok := out[c]; ok && prev != id {
					t.Fatalf("client %s went to instance %s, then %s", c, prev, id)
				}
				out[c] = id
			}
		}
		return out
	}
	before := home()
	used := map[string]int{}
	for _, id := range before {
		used[id]++
	}
	if len(used) < 2 {
		t.Fatalf("24 client addresses all went to %v; SourceIP should spread clients", used)
	}
	e.MustCLI("stop", "-n", "web", "--instance-ids", "1", "-o", "none")
	Eventually(t, 15*time.Second, "instance 1 leaves", func() error {
		st, err := lbStates(e, "webLB", "")
		if err != nil || len(st) != 2 {
			return fmt.Errorf("backends %v %v", st, err)
		}
		return nil
	})
	after := home()
	for _, c := range clients {
		if before[c] != "1" && after[c] != before[c] {
			t.Errorf("client %s moved from %s to %s though its backend stayed", c, before[c], after[c])
		}
		if after[c] == "1" {
			t.Errorf("client %s still reaches stopped instance 1", c)
		}
	}
}

// A Udp rule: each new flow (client address and port) goes to the next
// healthy backend, and a flow's datagrams stay on its backend.
func TestLBUdpRule(t *testing.T) {
	t.Parallel()
	lbNeedPython(t)
	e := Start(t, Options{ProbeScale: "0.05"})
	url := lbCreate(e, "web", 3, lbAppCommand(80))
	e.MustCLI("network", "lb", "rule", "create", "--lb-name", "webLB", "-n", "udp9999", "--protocol", "Udp",
		"--frontend-port", "9999", "--backend-port", "9999", "--probe-name", "httpProbe", "-o", "none")
	lbWaitAllUp(e, "webLB", "udp9999", "web", 30*time.Second)
	front := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/") + ":9999"

	ask := func(c net.Conn, msg string) (string, error) {
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write([]byte(msg)); err != nil {
			return "", err
		}
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		if err != nil {
			return "", err
		}
		if !strings.HasSuffix(string(buf[:n]), msg) {
			return "", fmt.Errorf("answer %q does not echo %q", buf[:n], msg)
		}
		return lbInstanceOf(string(buf[:n])), nil
	}
	per := map[string]int{}
	for i := 0; i < 6; i++ {
		c, err := net.Dial("udp", front)
		if err != nil {
			t.Fatal(err)
		}
		first := ""
		for j := 0; j < 3; j++ {
			id, err := ask(c, fmt.Sprintf("flow %d datagram %d", i, j))
			if err != nil {
				c.Close()
				t.Fatalf("flow %d datagram %d: %v", i, j, err)
			}
			if first == "" {
				first = id
			} else if id != first {
				t.Errorf("flow %d moved from instance %s to %s", i, first, id)
			}
		}
		c.Close()
		per[first]++
	}
	if per["0"] != 2 || per["1"] != 2 || per["2"] != 2 {
		t.Errorf("6 UDP flows over 3 backends: %v, want 2 each", per)
	}
}
