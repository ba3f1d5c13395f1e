package dns

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/internal/testutil"

	"github.com/vmss-emulator/vmss/nsnet"
	"github.com/vmss-emulator/vmss/vnet"
)

// TestInVNET runs the server at 168.63.129.16:53 inside a VNET namespace
// and queries it with dig from an attached instance.
func TestInVNET(t *testing.T) {
	testutil.RequireRoot(t)
	if _, err := exec.LookPath("dig"); err != nil {
		t.Skip("dig is not installed")
	}
	ctx := context.Background()
	var m vnet.Manager
	vn, inst, other := testutil.UniqueName("vmsst"), testutil.UniqueName("vmsst"), testutil.UniqueName("vmsst")
	t.Cleanup(func() {
		if err := m.Delete(ctx, vn); err != nil {
			t.Error(err)
		}
	})
	err := m.Ensure(ctx, vnet.Spec{Netns: vn, Subnets: []vnet.Subnet{{Prefix: netip.MustParsePrefix("10.0.0.0/24")}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{inst, other} {
		if err := nsnet.Create(n); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nsnet.Remove(n) })
	}
	if err := m.Attach(ctx, vn, vnet.NIC{InstanceNetns: inst, Bridge: "vmssbr0", Addr: netip.MustParsePrefix("10.0.0.4/24")}); err != nil {
		t.Fatal(err)
	}

	s := testServer(t)
	// Registered after the VNET's cleanup, so it stops first: the server's
	// sockets must be closed before the namespace goes.
	runUntilCleanup(t, func(ctx context.Context) error { return s.ListenAndServe(ctx, nsnet.Path(vn), "") })
	// Wait until it listens (the TCP socket is bound after the UDP one).
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := nsnet.Dialer(nsnet.Path(vn))(ctx, "tcp", Addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not listening: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	digIn := func(ns string, args ...string) (string, error) {
		args = append([]string{"--net=" + nsnet.Path(ns), "dig", "@168.63.129.16", "+time=1", "+tries=1"}, args...)
		out, err := exec.Command("nsenter", args...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"+short", "web000002"}, "10.0.0.4"},
		{[]string{"+short", "web000002." + suffix}, "10.0.0.4"},
		{[]string{"+short", "+tcp", "Web00000A." + suffix}, "10.0.1.5"},
		{[]string{"+short", "-x", "10.0.0.4"}, "web000002." + suffix + "."},
	} {
		got, err := digIn(inst, tc.args...)
		if err != nil || got != tc.want {
			t.Errorf("dig %v from the instance = %q, %v; want %q", tc.args, got, err, tc.want)
		}
	}
	if got, _ := digIn(inst, "nosuch"); !strings.Contains(got, "status: NXDOMAIN") {
		t.Errorf("unknown name from the instance:\n%s", got)
	}
	// A namespace outside the VNET cannot reach the server.
	if got, err := digIn(other, "+short", "web000002"); err == nil {
		t.Errorf("dig from outside the VNET answered: %q", got)
	}
}
