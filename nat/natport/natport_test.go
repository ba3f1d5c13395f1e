package natport

import (
	"errors"
	"maps"
	"net/netip"
	"strings"
	"testing"
)

var pub = netip.MustParseAddr("127.77.0.4")

func seedPool(start, end int) Pool {
	return Pool{Name: "natpool", FrontendIP: pub, Protocol: Tcp, FrontendPortRangeStart: start, FrontendPortRangeEnd: end, BackendPort: 22}
}

func TestAssignPoolPorts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pool     Pool
		ids      []int
		existing map[int]int
		want     map[int]int
		code     string
	}{
		{name: "seed table", pool: seedPool(50000, 50119), ids: []int{0, 1}, want: map[int]int{0: 50000, 1: 50001}},
		{name: "non-contiguous ids after overprovision", pool: seedPool(50000, 50119), ids: []int{1, 3, 4},
			want: map[int]int{1: 50001, 3: 50003, 4: 50004}},
		{name: "id past the range gets the lowest free port", pool: seedPool(50000, 50002), ids: []int{0, 7},
			want: map[int]int{0: 50000, 7: 50001}},
		{name: "in-range ids claim their own port before out-of-range ids fill gaps", pool: seedPool(50000, 50002),
			ids: []int{9, 0, 1}, want: map[int]int{0: 50000, 1: 50001, 9: 50002}},
		{name: "stable for the instance's life", pool: seedPool(50000, 50119), ids: []int{0, 1, 2},
			existing: map[int]int{0: 50007, 1: 50001}, want: map[int]int{0: 50007, 1: 50001, 2: 50002}},
		{name: "an existing holder keeps a port a new id would prefer", pool: seedPool(50000, 50003),
			ids: []int{2, 9}, existing: map[int]int{9: 50002}, want: map[int]int{9: 50002, 2: 50000}},
		{name: "deleted instance frees its port", pool: seedPool(50000, 50001), ids: []int{1, 5},
			existing: map[int]int{0: 50000, 1: 50001}, want: map[int]int{1: 50001, 5: 50000}},
		{name: "existing port outside a shrunk range is reassigned", pool: seedPool(50000, 50001), ids: []int{0, 1},
			existing: map[int]int{0: 50000, 1: 50010}, want: map[int]int{0: 50000, 1: 50001}},
		{name: "duplicate ids count once", pool: seedPool(50000, 50000), ids: []int{3, 3}, want: map[int]int{3: 50000}},
		{name: "no instances", pool: seedPool(50000, 50119), ids: nil, existing: map[int]int{0: 50000}, want: map[int]int{}},
		{name: "exhausted", pool: seedPool(50000, 50002), ids: []int{0, 1, 2, 3}, code: CodePortRangeTooSmall},
		{name: "inverted range", pool: seedPool(50010, 50000), ids: []int{0}, code: CodeInvalidPortRange},
		{name: "bad backend port", pool: Pool{Name: "p", FrontendPortRangeStart: 1, FrontendPortRangeEnd: 2}, ids: []int{0}, code: CodeInvalidPort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := maps.Clone(tc.existing)
			got, err := AssignPoolPorts(tc.pool, tc.ids, tc.existing)
			if !maps.Equal(before, tc.existing) {
				t.Fatalf("existing map modified: %v → %v", before, tc.existing)
			}
			if tc.code != "" {
				var e *Error
				if !errors.As(err, &e) || e.Code != tc.code || e.Target != tc.pool.Name {
					t.Fatalf("err %v, want code %s target %s", err, tc.code, tc.pool.Name)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestExhaustionMessage(t *testing.T) {
	_, err := AssignPoolPorts(seedPool(50000, 50001), []int{0, 1, 2}, nil)
	want := "InboundNatPoolFrontendPortRangeSmallerThanRequestedPorts: the frontend port range 50000-50001 of inbound NAT pool natpool has 2 ports, fewer than the 3 requested by the scale set's instances; widen frontendPortRangeEnd or lower the capacity (target natpool)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestValidate(t *testing.T) {
	other := netip.MustParseAddr("127.77.0.5")
	rule := func(name string, ip netip.Addr, proto Protocol, port int) Rule {
		return Rule{Name: name, FrontendIP: ip, Protocol: proto, FrontendPort: port, BackendPort: 22}
	}
	p2 := seedPool(50100, 50200)
	p2.Name = "natpool2"
	for _, tc := range []struct {
		name  string
		pools []Pool
		rules []Rule
		codes []string
	}{
		{name: "disjoint", pools: []Pool{seedPool(50000, 50099), p2}, rules: []Rule{rule("ssh", pub, Tcp, 2222)}},
		{name: "pool ranges overlap", pools: []Pool{seedPool(50000, 50119), p2}, codes: []string{CodePoolRangesOverlap}},
		{name: "rule inside a pool range", pools: []Pool{seedPool(50000, 50119)}, rules: []Rule{rule("ssh", pub, "tcp", 50005)},
			codes: []string{CodeRuleConflictsWithPool}},
		{name: "two rules on one port", rules: []Rule{rule("a", pub, Tcp, 80), rule("b", pub, Tcp, 80)}, codes: []string{CodeDuplicateRulePort}},
		{name: "same port on another frontend IP is fine", pools: []Pool{seedPool(50000, 50119)}, rules: []Rule{rule("ssh", other, Tcp, 50005)}},
		{name: "Tcp and Udp do not collide", pools: []Pool{seedPool(50000, 50119)}, rules: []Rule{rule("dns", pub, Udp, 50005)}},
		{name: "All collides with Tcp", pools: []Pool{seedPool(50000, 50119)}, rules: []Rule{rule("any", pub, All, 50005)},
			codes: []string{CodeRuleConflictsWithPool}},
		{name: "bad rule port and bad pool reported together", pools: []Pool{seedPool(0, 10)}, rules: []Rule{rule("x", pub, Tcp, 70000)},
			codes: []string{CodeInvalidPortRange, CodeInvalidPort}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.pools, tc.rules)
			if len(tc.codes) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %v", tc.codes)
			}
			for _, c := range tc.codes {
				if !strings.Contains(err.Error(), c+":") {
					t.Fatalf("error %q lacks code %s", err, c)
				}
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%T is not an *Error", err)
			}
		})
	}
}

func TestAssignRulePorts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		start    int
		end      int
		members  []string
		existing map[string]int
		reserved map[int]bool
		want     map[string]int
		code     string
	}{
		{name: "pre-allocated in order from the start", start: 221, end: 230, members: []string{"a", "b"},
			want: map[string]int{"a": 221, "b": 222}},
		{name: "scale-out takes the next free port", start: 221, end: 230, members: []string{"a", "b", "c"},
			existing: map[string]int{"a": 221, "b": 222}, want: map[string]int{"a": 221, "b": 222, "c": 223}},
		{name: "scale-in keeps the other mappings", start: 221, end: 230, members: []string{"a", "c"},
			existing: map[string]int{"a": 221, "b": 222, "c": 223}, want: map[string]int{"a": 221, "c": 223}},
		{name: "a freed port is reused by the next member", start: 221, end: 230, members: []string{"a", "c", "d"},
			existing: map[string]int{"a": 221, "c": 223}, want: map[string]int{"a": 221, "c": 223, "d": 222}},
		{name: "reserved ports are skipped", start: 221, end: 224, members: []string{"a", "b"},
			reserved: map[int]bool{221: true, 222: true}, want: map[string]int{"a": 223, "b": 224}},
		{name: "exhausted range", start: 221, end: 222, members: []string{"a", "b", "c"},
			existing: map[string]int{"a": 221, "b": 222}, code: CodeRulePortRangeTooSmall},
		{name: "exhausted by reserved ports", start: 221, end: 222, members: []string{"a", "b"},
			reserved: map[int]bool{222: true}, code: CodeRulePortRangeTooSmall},
		{name: "bad range", start: 300, end: 200, members: []string{"a"}, code: CodeInvalidPortRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := maps.Clone(tc.existing)
			got, err := AssignRulePorts(Pool{Name: "ssh", FrontendIP: pub, FrontendPortRangeStart: tc.start, FrontendPortRangeEnd: tc.end, BackendPort: 22},
				tc.members, tc.existing, tc.reserved)
			if !maps.Equal(before, tc.existing) {
				t.Fatalf("existing changed: %v -> %v", before, tc.existing)
			}
			if tc.code != "" {
				var e *Error
				if !errors.As(err, &e) || e.Code != tc.code {
					t.Fatalf("err = %v, want code %s", err, tc.code)
				}
				return
			}
			if err != nil || !maps.Equal(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
