package vnet

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// The host's backlog is left alone while floods of the largest bridge fit
// it, raised once they would not (never lowered), and not read again until
// a larger bridge needs it.
func TestBacklogSizer(t *testing.T) {
	sys := &fakeSysctls{v: map[string]int{netdevBacklog: 1000}}
	var z backlogSizer
	if err := z.ensure(sys, 250, discard); err != nil || sys.writes != 0 {
		t.Fatalf("a bridge of 250 ports: err %v, %d writes; want the default backlog kept", err, sys.writes)
	}
	if err := z.ensure(sys, 1023, discard); err != nil {
		t.Fatal(err)
	}
	if got, want := sys.v[netdevBacklog], backlogNeed(1023); got != want || want <= 1023 {
		t.Fatalf("after a bridge of 1,023 ports: backlog %d, want %d (more than one flood)", got, want)
	}
	w := sys.writes
	if err := z.ensure(sys, 900, discard); err != nil || sys.writes != w || sys.v[netdevBacklog] != backlogNeed(1023) {
		t.Errorf("a smaller bridge later: err %v, %d more writes, backlog %d (never lowered)", err, sys.writes-w, sys.v[netdevBacklog])
	}
	// A host with a larger backlog keeps it.
	big := &fakeSysctls{v: map[string]int{netdevBacklog: 100000}}
	var z2 backlogSizer
	if err := z2.ensure(big, 1023, discard); err != nil || big.writes != 0 || big.v[netdevBacklog] != 100000 {
		t.Errorf("larger backlog: err %v, %d writes, backlog %d", err, big.writes, big.v[netdevBacklog])
	}
}

// Where the host forbids the change, a bridge whose one flood fits is
// accepted; one whose flood does not is refused with the command that
// makes room.
func TestBacklogSizerRefuses(t *testing.T) {
	sys := &fakeSysctls{v: map[string]int{netdevBacklog: 1000}, deny: errors.New("read-only file system")}
	var z backlogSizer
	if err := z.ensure(sys, 600, discard); err != nil {
		t.Fatalf("a bridge of 600 ports fits one flood in 1,000: %v", err)
	}
	err := z.ensure(sys, 1023, discard)
	if err == nil {
		t.Fatal("a bridge of 1,023 ports accepted with a backlog of 1,000 that cannot be raised")
	}
	for _, want := range []string{"sysctl -w net.core.netdev_max_backlog=4092", "read-only file system", "1000"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// On a bridge of more ports than the backlog holds, a broadcast from its
// newest port does not reach its oldest (the place of a leaf's uplink): the
// positive control, with a backlog of 250 and a bridge of 300 ports, as a
// full bridge of 1,023 ports against the default 1,000 (which takes a
// minute to build). Once the backlog is sized for the bridge, it does. The
// host's value is put back afterwards.
func TestBridgeBroadcastReachesOldestPort(t *testing.T) {
	requireRoot(t)
	const ports, control = 300, 250
	sys := procSysctls{}
	orig, err := sys.Read(netdevBacklog)
	if err != nil {
		t.Skip("no net.core.netdev_max_backlog here:", err)
	}
	t.Cleanup(func() {
		if err := sys.Write(netdevBacklog, orig); err != nil {
			t.Errorf("putting net.core.netdev_max_backlog back to %d: %v", orig, err)
		}
	})
	p := uniq()
	br, a, b := p+"br", p+"a", p+"b"
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	for _, n := range []string{br, a, b} {
		ip("netns", "add", n)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n).Run() })
	}
	ip("-n", br, "link", "add", "br0", "type", "bridge")
	ip("-n", br, "link", "set", "br0", "up")
	// The oldest port leads to b, the newest to a, and the rest fill the bridge.
	ip("-n", br, "link", "add", "old", "type", "veth", "peer", "name", "eth0", "netns", b)
	ip("-n", br, "link", "set", "old", "master", "br0", "up")
	ip("-n", b, "addr", "add", "10.9.0.2/24", "dev", "eth0")
	ip("-n", b, "link", "set", "eth0", "up")
	var batch strings.Builder
	for i := range ports - 3 {
		fmt.Fprintf(&batch, "link add f%d type veth peer name g%d\nlink set f%d master br0 up\nlink set g%d up\n", i, i, i, i)
	}
	cmd := exec.Command("ip", "-n", br, "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("filling the bridge: %v: %s", err, out)
	}
	ip("-n", br, "link", "add", "new", "type", "veth", "peer", "name", "eth0", "netns", a)
	ip("-n", br, "link", "set", "new", "master", "br0", "up")
	ip("-n", a, "addr", "add", "10.9.0.3/24", "dev", "eth0")
	ip("-n", a, "link", "set", "eth0", "up")
	// pings counts the pings from a to b that got an answer, each after an
	// ARP request: a broadcast the bridge floods to every port.
	pings := func() int {
		ok := 0
		for range 3 {
			ip("-n", a, "neigh", "flush", "all")
			if exec.Command("ip", "netns", "exec", a, "ping", "-c1", "-W1", "10.9.0.2").Run() == nil {
				ok++
			}
		}
		return ok
	}
	if err := sys.Write(netdevBacklog, control); err != nil {
		t.Fatal(err)
	}
	if n := pings(); n != 0 {
		t.Fatalf("with a backlog of %d, %d of 3 floods on %d ports reached the oldest port; the control expects none", control, n, ports)
	}
	var z backlogSizer
	if err := z.ensure(sys, ports, discard); err != nil {
		t.Fatal(err)
	}
	if v, _ := sys.Read(netdevBacklog); v != backlogNeed(ports) {
		t.Fatalf("backlog %d after sizing for %d ports, want %d", v, ports, backlogNeed(ports))
	}
	if n := pings(); n != 3 {
		t.Fatalf("with the backlog sized (%d), %d of 3 floods reached the oldest port", backlogNeed(ports), n)
	}
}
