package vnet

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
)

type fakeSysctls struct {
	v      map[string]int
	writes int
	deny   error
}

func (f *fakeSysctls) Read(key string) (int, error) {
	v, ok := f.v[key]
	if !ok {
		return 0, errors.New("no such key")
	}
	return v, nil
}

func (f *fakeSysctls) Write(key string, v int) error {
	if f.deny != nil {
		return f.deny
	}
	f.writes++
	f.v[key] = v
	return nil
}

func hostDefaults() *fakeSysctls {
	return &fakeSysctls{v: map[string]int{gcThresh2: 512, gcThresh3: 1024}}
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// The host's table is left alone while the instances fit, raised once they
// would not (never lowered), and not read again until more are needed.
func TestNeighSizer(t *testing.T) {
	sys := hostDefaults()
	var z neighSizer
	if err := z.ensure(sys, 448, discard); err != nil || sys.writes != 0 {
		t.Fatalf("448 instances: err %v, %d writes; want the default table kept", err, sys.writes)
	}
	if err := z.ensure(sys, 4096, discard); err != nil {
		t.Fatal(err)
	}
	need := neighNeed(4096)
	if sys.v[gcThresh3] != 2*need || sys.v[gcThresh2] != need {
		t.Errorf("after 4,096: gc_thresh2 %d, gc_thresh3 %d; want %d, %d", sys.v[gcThresh2], sys.v[gcThresh3], need, 2*need)
	}
	w := sys.writes
	if err := z.ensure(sys, 5000, discard); err != nil || sys.writes != w {
		t.Errorf("5,000 fit in what 4,096 raised it to: err %v, %d more writes", err, sys.writes-w)
	}
	// A host with a larger table keeps it.
	big := &fakeSysctls{v: map[string]int{gcThresh2: 100000, gcThresh3: 200000}}
	var z2 neighSizer
	if err := z2.ensure(big, 4096, discard); err != nil || big.writes != 0 || big.v[gcThresh3] != 200000 {
		t.Errorf("larger table: err %v, %d writes, gc_thresh3 %d", err, big.writes, big.v[gcThresh3])
	}
}

// Where the host forbids the change, the instances are refused with the
// command that makes room.
func TestNeighSizerRefuses(t *testing.T) {
	sys := hostDefaults()
	sys.deny = errors.New("read-only file system")
	var z neighSizer
	if err := z.ensure(sys, 100, discard); err != nil {
		t.Fatalf("100 instances fit the default table: %v", err)
	}
	err := z.ensure(sys, 2000, discard)
	if err == nil {
		t.Fatal("2,000 instances accepted with a table of 1,024 that cannot be raised")
	}
	for _, want := range []string{"sysctl -w net.ipv4.neigh.default.gc_thresh2=", "gc_thresh3=", "read-only file system", "1024"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// Attach refuses an instance the host's neighbour table cannot hold (when
// the limit cannot be raised) and attaches the ones before it.
func TestAttachRefusesFullNeighborTable(t *testing.T) {
	requireRoot(t)
	sys := &fakeSysctls{v: map[string]int{gcThresh2: 100, gcThresh3: neighNeed(1)}, deny: errors.New("permission denied")}
	m := Manager{Sysctls: sys}
	v := newVNET(t, &m, "10.0.0.0/24")
	attach(t, &m, v, newInstance(t), "vmssbr0", "10.0.0.4/24")
	inst := newInstance(t)
	err := m.Attach(t.Context(), v, NIC{InstanceNetns: inst, Bridge: "vmssbr0", Addr: netip.MustParsePrefix("10.0.0.5/24")})
	if err == nil || !strings.Contains(err.Error(), "sysctl -w") {
		t.Fatalf("second instance: err = %v, want a refusal naming the sysctl", err)
	}
	if hasLink(t, inst, "eth0") {
		t.Error("the refused instance got an eth0")
	}
	sys.deny = nil
	attach(t, &m, v, inst, "vmssbr0", "10.0.0.5/24")
	if sys.v[gcThresh3] != 2*neighNeed(2) {
		t.Errorf("gc_thresh3 = %d, want %d", sys.v[gcThresh3], 2*neighNeed(2))
	}
}
