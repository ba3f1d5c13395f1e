package vnet

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var (
	p24a = netip.MustParsePrefix("10.0.0.0/24")
	p24b = netip.MustParsePrefix("10.0.1.0/24")
)

func TestSpecNormalize(t *testing.T) {
	good := Spec{Netns: "vmss-vnet-a", Subnets: []Subnet{{Name: "a", Prefix: p24a, Bridge: "vmssbr0"}, {Prefix: p24b}}}
	got, err := good.normalize()
	if err != nil {
		t.Fatal(err)
	}
	if got.Subnets[1].Bridge != "vmssbr1" || got.Subnets[1].Name != "vmssbr1" {
		t.Fatalf("defaults not filled: %+v", got.Subnets[1])
	}
	for _, tc := range []struct {
		name string
		spec Spec
		want []string // every message expected in the error
	}{
		{"netns", Spec{Netns: "a/b"}, []string{"must not contain '/'"}},
		{"empty netns", Spec{}, []string{"non-empty"}},
		{"ipv6", Spec{Netns: "n", Subnets: []Subnet{{Prefix: netip.MustParsePrefix("fd00::/64")}}}, []string{"want an IPv4 network"}},
		{"too small", Spec{Netns: "n", Subnets: []Subnet{{Prefix: netip.MustParsePrefix("10.0.0.0/30")}}}, []string{"/8 to /29"}},
		{"too big", Spec{Netns: "n", Subnets: []Subnet{{Prefix: netip.MustParsePrefix("10.0.0.0/7")}}}, []string{"/8 to /29"}},
		{"not masked", Spec{Netns: "n", Subnets: []Subnet{{Prefix: netip.MustParsePrefix("10.0.0.5/24")}}}, []string{"did you mean 10.0.0.0/24"}},
		{"dns", Spec{Netns: "n", Subnets: []Subnet{{Prefix: netip.MustParsePrefix("168.63.0.0/16")}}}, []string{"168.63.129.16"}},
		{"overlap", Spec{Netns: "n", Subnets: []Subnet{{Prefix: netip.MustParsePrefix("10.0.0.0/16")}, {Prefix: p24b}}}, []string{"overlaps"}},
		{"bridge twice", Spec{Netns: "n", Subnets: []Subnet{{Prefix: p24a, Bridge: "vmssbr1"}, {Prefix: p24b}}}, []string{"used by two subnets"}},
		{"bridge prefix", Spec{Netns: "n", Subnets: []Subnet{{Prefix: p24a, Bridge: "br0"}}}, []string{"want vmssbr"}},
		{"bridge long", Spec{Netns: "n", Subnets: []Subnet{{Prefix: p24a, Bridge: "vmssbr0123456789"}}}, []string{"want vmssbr"}},
		{"bridge chars", Spec{Netns: "n", Subnets: []Subnet{{Prefix: p24a, Bridge: "vmssbrA"}}}, []string{"lower-case"}},
		{"name twice", Spec{Netns: "n", Subnets: []Subnet{{Name: "x", Prefix: p24a}, {Name: "x", Prefix: p24b}}}, []string{"name given twice"}},
		{"all at once", Spec{Netns: "", Subnets: []Subnet{{Prefix: netip.MustParsePrefix("10.0.0.0/30"), Bridge: "x"}}},
			[]string{"non-empty", "/8 to /29", "want vmssbr"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.spec.normalize()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestNICNormalize(t *testing.T) {
	n, err := NIC{InstanceNetns: "vmss-i-0", Bridge: "vmssbr0", Addr: netip.MustParsePrefix("10.0.0.4/24")}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	want := NIC{InstanceNetns: "vmss-i-0", Bridge: "vmssbr0", HostSideName: VethName("vmss-i-0"),
		Addr: netip.MustParsePrefix("10.0.0.4/24"), Gateway: netip.MustParseAddr("10.0.0.1"),
		MAC: net.HardwareAddr{0, 0x0d, 0x3a, 0, 0, 4}, MTU: 1500}
	if n.HostSideName != want.HostSideName || n.Gateway != want.Gateway || n.MAC.String() != want.MAC.String() || n.MTU != 1500 {
		t.Fatalf("defaults: got %+v, want %+v", n, want)
	}
	base := func() NIC {
		return NIC{InstanceNetns: "i", Bridge: "vmssbr0", Addr: netip.MustParsePrefix("10.0.0.4/24")}
	}
	for _, tc := range []struct {
		name string
		mod  func(*NIC)
		want string
	}{
		{"no instance", func(n *NIC) { n.InstanceNetns = "" }, "instance namespace"},
		{"no bridge", func(n *NIC) { n.Bridge = "" }, "bridge name"},
		{"veth name", func(n *NIC) { n.HostSideName = "veth0" }, "want vmssv"},
		{"veth long", func(n *NIC) { n.HostSideName = "vmssv01234567890" }, "want vmssv"},
		{"network", func(n *NIC) { n.Addr = netip.MustParsePrefix("10.0.0.0/24") }, "reserved"},
		{"gateway", func(n *NIC) { n.Addr = netip.MustParsePrefix("10.0.0.1/24") }, "reserved"},
		{"broadcast", func(n *NIC) { n.Addr = netip.MustParsePrefix("10.0.0.255/24") }, "reserved"},
		{"ipv6", func(n *NIC) { n.Addr = netip.MustParsePrefix("fd00::4/64") }, "IPv4"},
		{"host route", func(n *NIC) { n.Addr = netip.MustParsePrefix("10.0.0.4/32") }, "/8 to /29"},
		{"gw outside", func(n *NIC) { n.Gateway = netip.MustParseAddr("10.0.1.1") }, "gateway"},
		{"gw self", func(n *NIC) { n.Gateway = netip.MustParseAddr("10.0.0.4") }, "gateway"},
		{"multicast mac", func(n *NIC) { n.MAC = net.HardwareAddr{1, 0, 0, 0, 0, 1} }, "unicast"},
		{"short mac", func(n *NIC) { n.MAC = net.HardwareAddr{2, 0, 0} }, "unicast"},
		{"mtu", func(n *NIC) { n.MTU = 40 }, "MTU"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := base()
			tc.mod(&n)
			_, err := n.normalize()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestNames(t *testing.T) {
	if got := BridgeName(3); got != "vmssbr3" {
		t.Errorf("BridgeName(3) = %s", got)
	}
	a, b := VethName("vmss-inst-a"), VethName("vmss-inst-b")
	if len(a) != 15 || !strings.HasPrefix(a, VethPrefix) || a == b || a != VethName("vmss-inst-a") {
		t.Errorf("VethName: %s, %s", a, b)
	}
	if err := checkIfaceName("veth", a, VethPrefix); err != nil {
		t.Error(err)
	}
	if got := MACFor(netip.MustParseAddr("10.1.2.3")).String(); got != "00:0d:3a:01:02:03" {
		t.Errorf("MACFor = %s", got)
	}
	if MACFor(netip.MustParseAddr("fd00::1")) != nil {
		t.Error("MACFor(IPv6) not nil")
	}
	for _, tc := range []struct{ p, gw, bc string }{
		{"10.0.0.0/24", "10.0.0.1", "10.0.0.255"},
		{"10.0.0.0/16", "10.0.0.1", "10.0.255.255"},
		{"192.168.4.8/29", "192.168.4.9", "192.168.4.15"},
	} {
		p := netip.MustParsePrefix(tc.p)
		if g := GatewayOf(p).String(); g != tc.gw {
			t.Errorf("GatewayOf(%s) = %s", tc.p, g)
		}
		if bc := broadcastOf(p).String(); bc != tc.bc {
			t.Errorf("broadcastOf(%s) = %s", tc.p, bc)
		}
	}
}

func TestRetry(t *testing.T) {
	ctx := context.Background()
	calls := 0
	err := retry(ctx, func() error {
		calls++
		if calls < 3 {
			return netlink.ErrDumpInterrupted
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("transient then success: err %v after %d calls", err, calls)
	}

	calls = 0
	perm := errors.New("permanent")
	if err := retry(ctx, func() error { calls++; return perm }); err != perm || calls != 1 {
		t.Fatalf("permanent: err %v after %d calls", err, calls)
	}

	calls = 0
	if err := retry(ctx, func() error { calls++; return unix.EBUSY }); !errors.Is(err, unix.EBUSY) || calls != retryAttempts {
		t.Fatalf("always busy: err %v after %d calls", err, calls)
	}

	cctx, cancel := context.WithCancel(ctx)
	calls = 0
	start := time.Now()
	err = retry(cctx, func() error { calls++; cancel(); return unix.EAGAIN })
	if !errors.Is(err, context.Canceled) || !errors.Is(err, unix.EAGAIN) || calls != 1 || time.Since(start) > time.Second {
		t.Fatalf("cancelled: err %v after %d calls", err, calls)
	}
}
