package vnet

import (
	"fmt"
	"log/slog"
	"sync"
)

// A veth hands each packet to the receiving CPU's backlog queue (netif_rx),
// which holds net.core.netdev_max_backlog packets (1,000 by default) and
// drops the rest. A broadcast — every ARP request — on a bridge of n ports
// is n copies queued at once, and the bridge floods its newest ports first:
// on a bridge of more than about 1,000 ports the copies for its oldest
// ports, a leaf's uplink among them, are dropped, and instances on that
// leaf cannot resolve their gateway or anyone beyond it. Several broadcasts
// arriving together (instances starting in a burst) need room for several
// floods.
const netdevBacklog = "net/core/netdev_max_backlog"

// backlogFloods is how many floods of the largest bridge the backlog holds.
const backlogFloods = 4

// backlogNeed is the backlog a bridge of ports ports needs.
func backlogNeed(ports int) int { return backlogFloods * ports }

// backlogSizer raises the host's backlog when the largest bridge needs more
// than it holds, and never lowers it.
type backlogSizer struct {
	mu   sync.Mutex
	ok   int  // the largest bridge known to fit; nothing is read below it
	warn bool // told once that a backlog that cannot be raised holds one flood only
}

// ensure makes the backlog hold backlogFloods floods of a bridge of ports
// ports, and logs what it changed. Where the host forbids the change, a
// bridge whose one flood still fits is accepted with a warning (bursts of
// broadcasts may lose some, which ARP retries); a bridge whose single
// flood does not fit is refused with the command that makes room.
func (z *backlogSizer) ensure(sys Sysctls, ports int, log *slog.Logger) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if ports <= z.ok {
		return nil
	}
	cur, err := sys.Read(netdevBacklog)
	if err != nil {
		log.Warn("cannot read the host's net.core.netdev_max_backlog; not sizing it", "err", err)
		z.ok = ports
		return nil
	}
	need := backlogNeed(ports)
	if cur >= need {
		z.ok = cur / backlogFloods
		return nil
	}
	if err := sys.Write(netdevBacklog, need); err != nil {
		if ports < cur {
			if !z.warn {
				log.Warn("cannot raise the host's net.core.netdev_max_backlog; a burst of broadcasts on a large subnet may lose some",
					"bridge_ports", ports, "backlog", cur, "fix", fmt.Sprintf("sysctl -w net.core.netdev_max_backlog=%d", need), "err", err)
				z.warn = true
			}
			return nil
		}
		return fmt.Errorf("a broadcast on a subnet bridge of %d ports is %d packets and the host's backlog (net.core.netdev_max_backlog) holds %d; "+
			"the host does not let vmss raise it (%w): run `sysctl -w net.core.netdev_max_backlog=%d` on the host, or put fewer instances in one subnet",
			ports, ports, cur, err, need)
	}
	log.Warn("raised the host's per-CPU backlog: a broadcast on a subnet bridge is one packet per port, queued at once",
		"bridge_ports", ports, "net.core.netdev_max_backlog", fmt.Sprintf("%d -> %d", cur, need))
	z.ok = ports
	return nil
}

// largestBridge is the most ports of any bridge of a VNET's subnets.
func largestBridge(subnets map[string]*subnetPorts) int {
	n := 0
	for _, s := range subnets {
		n = max(n, s.trunkPorts)
		for _, lf := range s.leaves {
			n = max(n, lf.ports)
		}
	}
	return n
}
