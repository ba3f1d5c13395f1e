package natport

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Protocol is a frontend protocol in ARM spelling.
type Protocol string

// Protocols.
const (
	Tcp Protocol = "Tcp"
	Udp Protocol = "Udp"
	All Protocol = "All" // both; conflicts with either
)

// ParseProtocol reads "Tcp", "udp", "ALL" … case-insensitively. Empty
// means Tcp.
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToLower(s) {
	case "", "tcp":
		return Tcp, nil
	case "udp":
		return Udp, nil
	case "all":
		return All, nil
	}
	return "", fmt.Errorf("protocol %q: want Tcp, Udp or All", s)
}

// Norm is the protocol in canonical spelling (Tcp, Udp, All); an unknown
// protocol is returned as it is.
func (p Protocol) Norm() Protocol {
	if q, err := ParseProtocol(string(p)); err == nil {
		return q
	}
	return p
}

// Error is an ARM-style error: {"code","message","target"}.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Target  string `json:"target,omitempty"`
}

func (e *Error) Error() string {
	if e.Target != "" {
		return e.Code + ": " + e.Message + " (target " + e.Target + ")"
	}
	return e.Code + ": " + e.Message
}

// Error codes. CodePortRangeTooSmall is Azure's; the overlap codes are
// the emulator's names for conflicts Azure also rejects.
const (
	CodePortRangeTooSmall     = "InboundNatPoolFrontendPortRangeSmallerThanRequestedPorts"
	CodeInvalidPortRange      = "InvalidInboundNatPoolFrontendPortRange"
	CodeInvalidPort           = "InvalidInboundNatPort"
	CodePoolRangesOverlap     = "InboundNatPoolFrontendPortRangesOverlap"
	CodeRuleConflictsWithPool = "InboundNatRuleFrontendPortConflictsWithPool"
	CodeDuplicateRulePort     = "InboundNatRuleFrontendPortConflict"
)

// Pool is an inboundNatPool: instance i of the scale set is reachable on
// FrontendIP:port(i) → its private IP:BackendPort.
type Pool struct {
	Name       string     // pool name or resource id, used as error target
	FrontendIP netip.Addr // the frontend's public (or private, internal LB) IP
	Protocol   Protocol   // empty means Tcp
	// FrontendPortRangeStart and End bound the frontend ports, both
	// inclusive (ARM: start 1–65534, end 1–65535).
	FrontendPortRangeStart, FrontendPortRangeEnd int
	BackendPort                                  int
}

// Size is the number of frontend ports in the range.
func (p Pool) Size() int { return p.FrontendPortRangeEnd - p.FrontendPortRangeStart + 1 }

// check validates the pool's own fields.
func (p Pool) check() error {
	if p.FrontendPortRangeStart < 1 || p.FrontendPortRangeStart > 65534 ||
		p.FrontendPortRangeEnd < 1 || p.FrontendPortRangeEnd > 65535 ||
		p.FrontendPortRangeEnd < p.FrontendPortRangeStart {
		return &Error{Code: CodeInvalidPortRange, Target: p.Name, Message: fmt.Sprintf(
			"inbound NAT pool %s has frontend port range %d-%d; want 1 <= start <= end <= 65535 (start at most 65534)",
			p.Name, p.FrontendPortRangeStart, p.FrontendPortRangeEnd)}
	}
	if p.BackendPort < 1 || p.BackendPort > 65535 {
		return &Error{Code: CodeInvalidPort, Target: p.Name, Message: fmt.Sprintf(
			"inbound NAT pool %s has backend port %d; want 1-65535", p.Name, p.BackendPort)}
	}
	if _, err := ParseProtocol(string(p.Protocol)); err != nil {
		return &Error{Code: CodeInvalidPort, Target: p.Name, Message: "inbound NAT pool " + p.Name + ": " + err.Error()}
	}
	return nil
}

// AssignPoolPorts returns the frontend port of every instance in ids
// (instance id → port). existing holds the assignment made so far (may be
// nil); an instance keeps its port for its life when the port is still in
// the range. Instances not in ids are dropped, freeing their ports. A new
// instance gets FrontendPortRangeStart+id when that port is in the range
// and free (the seed's table: 50000 → instance 0, 50001 → instance 1),
// otherwise the lowest free port. When the range is smaller than the
// number of instances the result is an *Error with Code
// InboundNatPoolFrontendPortRangeSmallerThanRequestedPorts and existing is
// not touched.
func AssignPoolPorts(pool Pool, ids []int, existing map[int]int) (map[int]int, error) {
	if err := pool.check(); err != nil {
		return nil, err
	}
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) > pool.Size() {
		return nil, &Error{Code: CodePortRangeTooSmall, Target: pool.Name, Message: fmt.Sprintf(
			"the frontend port range %d-%d of inbound NAT pool %s has %d ports, fewer than the %d requested by the scale set's instances; widen frontendPortRangeEnd or lower the capacity",
			pool.FrontendPortRangeStart, pool.FrontendPortRangeEnd, pool.Name, pool.Size(), len(ids))}
	}
	inRange := func(p int) bool { return p >= pool.FrontendPortRangeStart && p <= pool.FrontendPortRangeEnd }
	out := make(map[int]int, len(ids))
	used := make(map[int]bool, len(ids))
	var pending []int
	for _, id := range ids { // 1: keep ports of existing instances
		if p, ok := existing[id]; ok && inRange(p) && !used[p] {
			out[id], used[p] = p, true
			continue
		}
		pending = append(pending, id)
	}
	var rest []int
	for _, id := range pending { // 2: start + id where free
		if p := pool.FrontendPortRangeStart + id; id >= 0 && inRange(p) && !used[p] {
			out[id], used[p] = p, true
			continue
		}
		rest = append(rest, id)
	}
	next := pool.FrontendPortRangeStart
	for _, id := range rest { // 3: lowest free port, in id order
		for used[next] {
			next++
		}
		out[id], used[next] = next, true
	}
	return out, nil
}

// Rule is a single inboundNatRule: FrontendIP:FrontendPort → one NIC's
// BackendPort.
type Rule struct {
	Name         string
	FrontendIP   netip.Addr
	Protocol     Protocol // empty means Tcp
	FrontendPort int
	BackendPort  int
}

// span is a frontend port range on one IP and protocol.
type span struct {
	kind, name string // "pool" or "rule"
	ip         netip.Addr
	proto      Protocol
	lo, hi     int
}

func (a span) overlaps(b span) bool {
	if a.ip.Unmap() != b.ip.Unmap() {
		return false
	}
	pa, pb := a.proto.Norm(), b.proto.Norm()
	if pa != pb && pa != All && pb != All {
		return false
	}
	return a.lo <= b.hi && b.lo <= a.hi
}

// Validate checks pools and rules together: each must be well formed,
// and no two may claim the same frontend port on the same frontend IP and
// protocol (All conflicts with Tcp and Udp). It returns every problem,
// joined; each is an *Error.
func Validate(pools []Pool, rules []Rule) error {
	var errs []error
	var spans []span
	for _, p := range pools {
		if err := p.check(); err != nil {
			errs = append(errs, err)
			continue
		}
		spans = append(spans, span{"pool", p.Name, p.FrontendIP, p.Protocol, p.FrontendPortRangeStart, p.FrontendPortRangeEnd})
	}
	for _, r := range rules {
		if r.FrontendPort < 1 || r.FrontendPort > 65534 || r.BackendPort < 1 || r.BackendPort > 65535 {
			errs = append(errs, &Error{Code: CodeInvalidPort, Target: r.Name, Message: fmt.Sprintf(
				"inbound NAT rule %s maps frontend port %d to backend port %d; want frontend 1-65534 and backend 1-65535",
				r.Name, r.FrontendPort, r.BackendPort)})
			continue
		}
		spans = append(spans, span{"rule", r.Name, r.FrontendIP, r.Protocol, r.FrontendPort, r.FrontendPort})
	}
	for i, a := range spans {
		for _, b := range spans[:i] {
			if !a.overlaps(b) {
				continue
			}
			code := CodeDuplicateRulePort
			switch {
			case a.kind == "pool" && b.kind == "pool":
				code = CodePoolRangesOverlap
			case a.kind != b.kind:
				code = CodeRuleConflictsWithPool
			}
			errs = append(errs, &Error{Code: code, Target: a.name, Message: fmt.Sprintf(
				"inbound NAT %s %s (%s %s ports %d-%d) overlaps %s %s (ports %d-%d); give one of them other frontend ports",
				a.kind, a.name, a.ip, a.proto.Norm(), a.lo, a.hi, b.kind, b.name, b.lo, b.hi)})
		}
	}
	return errors.Join(errs...)
}

// CodeRulePortRangeTooSmall is returned when a version 2 inbound NAT rule's
// frontend port range has fewer free ports than its backend pool has members.
const CodeRulePortRangeTooSmall = "InboundNatRuleFrontendPortRangeSmallerThanRequestedPorts"

// AssignRulePorts gives each member of a version 2 inbound NAT rule's
// backend pool (members: any stable key, such as an instance's resource id)
// one frontend port of the rule's range (pool.FrontendPortRangeStart–End).
// A member in existing keeps its port while it is in the range and not
// reserved; a new member takes the lowest free port, in the order of
// members (callers pass them sorted by creation). reserved ports (held by
// members assigned elsewhere) are never given. Members not listed are
// dropped, freeing their ports. When the range has too few free ports the
// result is an *Error with Code CodeRulePortRangeTooSmall and nothing is
// assigned.
func AssignRulePorts(pool Pool, members []string, existing map[string]int, reserved map[int]bool) (map[string]int, error) {
	if err := pool.check(); err != nil {
		return nil, err
	}
	inRange := func(p int) bool { return p >= pool.FrontendPortRangeStart && p <= pool.FrontendPortRangeEnd }
	free := pool.Size()
	for p := range reserved {
		if inRange(p) {
			free--
		}
	}
	seen := map[string]bool{}
	var uniq []string
	for _, m := range members {
		if !seen[m] {
			seen[m] = true
			uniq = append(uniq, m)
		}
	}
	if len(uniq) > free {
		return nil, &Error{Code: CodeRulePortRangeTooSmall, Target: pool.Name, Message: fmt.Sprintf(
			"the frontend port range %d-%d of inbound NAT rule %s has %d free ports, fewer than the %d members of its backend pool; widen frontendPortRangeEnd or lower the capacity",
			pool.FrontendPortRangeStart, pool.FrontendPortRangeEnd, pool.Name, free, len(uniq))}
	}
	out := make(map[string]int, len(uniq))
	used := map[int]bool{}
	var pending []string
	for _, m := range uniq {
		if p, ok := existing[m]; ok && inRange(p) && !used[p] && !reserved[p] {
			out[m], used[p] = p, true
			continue
		}
		pending = append(pending, m)
	}
	next := pool.FrontendPortRangeStart
	for _, m := range pending {
		for used[next] || reserved[next] {
			next++
		}
		out[m], used[next] = next, true
	}
	return out, nil
}
