package vnet

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// The kernel's IPv4 neighbour (ARP) table is one table for every network
// namespace, and its limits exist only in the host's namespace:
// net.ipv4.neigh.default.gc_thresh3 (1,024 by default) is the most entries
// of all namespaces together; beyond gc_thresh2 (512) entries are dropped
// every 5 s. Every instance keeps an entry for its gateway and the VNET one
// for every instance it talks to (DNS answers, probes, NAT, load
// balancing), so a thousand instances overflow the default table: new
// neighbours fail ("neighbor table overflow") and instances become
// unreachable at random.
const (
	gcThresh2 = "net/ipv4/neigh/default/gc_thresh2"
	gcThresh3 = "net/ipv4/neigh/default/gc_thresh3"
)

// neighHeadroom is what is left in the table for the rest of the host: the
// default table (1,024) holds 448 instances.
const neighHeadroom = 128

// neighNeed is how many neighbour entries ports instances need: one in
// the instance for its gateway, one in the VNET for the instance.
func neighNeed(ports int) int { return 2*ports + neighHeadroom }

// Sysctls reads and writes the host's /proc/sys; keys are paths relative
// to /proc/sys.
type Sysctls interface {
	Read(key string) (int, error)
	Write(key string, v int) error
}

// procSysctls is the host's /proc/sys, as the daemon's process sees it (it
// runs in the host's network namespace).
type procSysctls struct{}

func (procSysctls) Read(key string) (int, error) {
	b, err := os.ReadFile(filepath.Join("/proc/sys", key))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func (procSysctls) Write(key string, v int) error {
	return os.WriteFile(filepath.Join("/proc/sys", key), []byte(strconv.Itoa(v)), 0o644)
}

// neighSizer raises the host's neighbour table limits when the instances
// attached need more than they allow, and never lowers them.
type neighSizer struct {
	mu sync.Mutex
	ok int // the most ports known to fit; no sysctl is read below it
}

// ensure makes the neighbour table hold what ports instances need. It
// raises gc_thresh3 to twice the need and gc_thresh2 to the need (so
// instances' entries are not dropped every 5 s) and logs what it changed;
// when the host forbids the change it fails with the commands that make
// it.
func (z *neighSizer) ensure(sys Sysctls, ports int, log *slog.Logger) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if ports <= z.ok {
		return nil
	}
	need := neighNeed(ports)
	t2, err2 := sys.Read(gcThresh2)
	t3, err3 := sys.Read(gcThresh3)
	if err2 != nil || err3 != nil {
		// No table limits to read (another kernel): nothing to size.
		log.Warn("cannot read the host's neighbour table limits; not sizing them", "err2", err2, "err3", err3)
		z.ok = ports
		return nil
	}
	if t3 >= need {
		z.ok = (t3 - neighHeadroom) / 2
		return nil
	}
	new2, new3 := max(t2, need), max(t3, 2*need)
	if err := sys.Write(gcThresh2, new2); err != nil {
		return z.refuse(ports, t3, new2, new3, err)
	}
	if err := sys.Write(gcThresh3, new3); err != nil {
		return z.refuse(ports, t3, new2, new3, err)
	}
	log.Warn("raised the host's neighbour (ARP) table limits: all network namespaces share one table and the instances need more entries than it allowed",
		"instances", ports,
		"net.ipv4.neigh.default.gc_thresh2", fmt.Sprintf("%d -> %d", t2, new2),
		"net.ipv4.neigh.default.gc_thresh3", fmt.Sprintf("%d -> %d", t3, new3))
	z.ok = (new3 - neighHeadroom) / 2
	return nil
}

func (z *neighSizer) refuse(ports, t3, new2, new3 int, err error) error {
	return fmt.Errorf("the host's neighbour table holds %d entries (net.ipv4.neigh.default.gc_thresh3) and %d instances need about %d; "+
		"the host does not let vmss raise it (%w): run `sysctl -w net.ipv4.neigh.default.gc_thresh2=%d net.ipv4.neigh.default.gc_thresh3=%d` on the host, or run fewer instances",
		t3, ports, neighNeed(ports), err, new2, new3)
}
