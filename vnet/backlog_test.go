package vnet

import (
	"errors"
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
