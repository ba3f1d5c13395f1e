package nsg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/nsnet"
)

// lab is two throwaway network namespaces joined by a veth: "vnet" plays
// the VNET side (10.0.0.5, the Internet source and 168.63.129.16) and
// "vm" the instance (10.0.0.4) with listeners on ports 22 and 80.
type lab struct {
	t          *testing.T
	vnet, vm   string // namespace names
	vnetPath   string
	vmPath     string
	listeners  []net.Listener
	vnetPrefix []netip.Prefix
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func newLab(t *testing.T) *lab {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft (apt-get install nftables)")
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	l := &lab{t: t, vnet: "vmsstnsg" + id + "v", vm: "vmsstnsg" + id + "i", vnetPrefix: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}}
	l.vnetPath, l.vmPath = nsnet.Path(l.vnet), nsnet.Path(l.vm)
	ip(t, "netns", "add", l.vnet)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", l.vnet).Run() })
	ip(t, "netns", "add", l.vm)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", l.vm).Run() })
	ip(t, "-n", l.vnet, "link", "add", "vmsstv"+id, "type", "veth", "peer", "name", "eth0", "netns", l.vm)
	ip(t, "-n", l.vnet, "addr", "add", "10.0.0.5/24", "dev", "vmsstv"+id)
	ip(t, "-n", l.vnet, "addr", "add", InternetSource.String()+"/32", "dev", "vmsstv"+id)
	ip(t, "-n", l.vnet, "addr", "add", AzureLoadBalancer.String()+"/32", "dev", "vmsstv"+id)
	ip(t, "-n", l.vnet, "link", "set", "vmsstv"+id, "up")
	ip(t, "-n", l.vm, "addr", "add", "10.0.0.4/24", "dev", "eth0")
	ip(t, "-n", l.vm, "link", "set", "eth0", "up")
	ip(t, "-n", l.vm, "link", "set", "lo", "up")
	ip(t, "-n", l.vm, "route", "add", InternetSource.String()+"/32", "dev", "eth0")
	ip(t, "-n", l.vm, "route", "add", AzureLoadBalancer.String()+"/32", "dev", "eth0")
	for _, port := range []string{"22", "80"} {
		ln, err := nsnet.ListenTCP(context.Background(), l.vmPath, "0.0.0.0:"+port)
		if err != nil {
			t.Fatal(err)
		}
		l.listeners = append(l.listeners, ln)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write([]byte("hi"))
				_ = c.Close()
			}
		}()
		t.Cleanup(func() { _ = ln.Close() })
	}
	// A listener on the VNET side for the instance's outbound checks.
	ln, err := nsnet.ListenTCP(context.Background(), l.vnetPath, "0.0.0.0:443")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hi"))
			_ = c.Close()
		}
	}()
	return l
}

// reach reports whether a TCP connection from src (in nsPath) to dst
// completes and reads the listener's greeting.
func reach(nsPath string, src netip.Addr, dst string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	c, err := nsnet.DialerFrom(nsPath, src)(ctx, "tcp", dst)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
	b := make([]byte, 2)
	n, _ := c.Read(b)
	return n == 2
}

// InternetSource stands for a client outside the VNET (the emulator's
// vnet.InternetAddr).
var InternetSource = netip.MustParseAddr("198.18.0.1")

var (
	fromVNet     = netip.MustParseAddr("10.0.0.5")
	fromInternet = InternetSource
	fromLB       = AzureLoadBalancer
)

func (l *lab) apply(subnet, nic *Group) {
	l.t.Helper()
	if err := Apply(context.Background(), Nft{}, l.vmPath, Instance{VNet: l.vnetPrefix, Subnet: subnet, NIC: nic}); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) expect(what string, src netip.Addr, port string, want bool) {
	l.t.Helper()
	if got := reach(l.vnetPath, src, "10.0.0.4:"+port); got != want {
		l.t.Errorf("%s: %s -> 10.0.0.4:%s reached=%v, want %v", what, src, port, got, want)
	}
}

func mustParse(t *testing.T, rules ...string) *Group {
	t.Helper()
	g, e := Parse("/nsg", body(rules...))
	if e != nil {
		t.Fatal(e)
	}
	return g
}

// TestNftIsolationMatrix applies real filters in a throwaway namespace and
// checks each Azure behaviour with a positive control.
func TestNftIsolationMatrix(t *testing.T) {
	l := newLab(t)

	// No NSG: nothing is filtered (positive control for every check below).
	l.apply(nil, nil)
	l.expect("no NSG", fromInternet, "22", true)
	l.expect("no NSG", fromVNet, "80", true)

	// An empty NSG: Azure's defaults. The VNET and the load balancer's
	// probes get in; the Internet does not.
	l.apply(nil, mustParse(t))
	l.expect("defaults, from the VNET", fromVNet, "22", true)
	l.expect("defaults, probe source", fromLB, "80", true)
	l.expect("defaults, from the Internet", fromInternet, "80", false)

	// Allow 80 from anywhere, deny 22 from the Internet.
	web := mustParse(t, rule("deny-ssh", 100, "Inbound", "Deny", "Tcp", "Internet", "22"), rule("web", 200, "Inbound", "Allow", "Tcp", "*", "80"))
	l.apply(nil, web)
	l.expect("allow 80", fromInternet, "80", true)
	l.expect("deny 22 from Internet", fromInternet, "22", false)
	l.expect("deny 22 from Internet leaves the VNET", fromVNet, "22", true)

	// A Deny of everything at 100 also stops the probes (as on Azure).
	l.apply(nil, mustParse(t, rule("deny-all", 100, "Inbound", "Deny", "*", "*", "*")))
	l.expect("deny all, probe source", fromLB, "80", false)
	l.expect("deny all, VNET", fromVNet, "22", false)

	// Subnet and NIC both apply: the subnet allows 80, the NIC denies it.
	l.apply(mustParse(t, rule("web", 100, "Inbound", "Allow", "Tcp", "*", "80")), mustParse(t, rule("no-web", 100, "Inbound", "Deny", "Tcp", "*", "80")))
	l.expect("subnet allows, NIC denies", fromInternet, "80", false)
	// ... and both must allow: NIC allows, subnet denies 22 from the VNET.
	l.apply(mustParse(t, rule("no-ssh", 100, "Inbound", "Deny", "Tcp", "VirtualNetwork", "22")), mustParse(t, rule("ssh", 100, "Inbound", "Allow", "Tcp", "*", "22")))
	l.expect("NIC allows, subnet denies", fromVNet, "22", false)
	l.expect("NIC allows, subnet has no word on 80 from the VNET", fromVNet, "80", true)

	// Outbound: denying the Internet stops the instance's own connections
	// out, while replies of allowed inbound flows still leave (stateful).
	l.apply(nil, mustParse(t, rule("web", 100, "Inbound", "Allow", "Tcp", "*", "80"), rule("no-out", 100, "Outbound", "Deny", "*", "*", "*")))
	l.expect("stateful: replies of an allowed inbound flow", fromInternet, "80", true)
	if reach(l.vmPath, netip.Addr{}, InternetSource.String()+":443") {
		t.Error("outbound Deny *: the instance still reached the Internet")
	}
	l.apply(nil, mustParse(t))
	if !reach(l.vmPath, netip.Addr{}, InternetSource.String()+":443") {
		t.Error("outbound defaults: the instance cannot reach the Internet (AllowInternetOutBound)")
	}

	// Removing the NSG removes the filter.
	l.apply(nil, nil)
	l.expect("NSG removed", fromInternet, "22", true)
	out, err := exec.Command("ip", "netns", "exec", l.vm, "nft", "list", "tables").CombinedOutput()
	if err != nil || strings.Contains(string(out), Table) {
		t.Errorf("after removal: nft list tables: %v %s", err, out)
	}
}
