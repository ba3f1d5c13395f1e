package dns

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	mdns "github.com/miekg/dns"
)

// ServeDNS answers one query from the current records; it never blocks on
// a change to them. It implements miekg/dns's Handler.
func (s *Server) ServeDNS(w mdns.ResponseWriter, r *mdns.Msg) {
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	_ = w.WriteMsg(s.reply(s.zone.Load(), r, udp)) // an error means the client is gone; nothing to do
}

// reply is the answer to r from z, truncated to what the client takes:
// over UDP 512 bytes or the EDNS0 size it announced.
func (s *Server) reply(z *zone, r *mdns.Msg, udp bool) *mdns.Msg {
	m := s.answer(z, r)
	size := mdns.MaxMsgSize
	if udp {
		size = mdns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
	}
	m.Truncate(size) // a guard: with one answer record, replies fit in 512 bytes
	return m
}

const reverseSuffix = ".in-addr.arpa."

// answer builds the reply to r. It is a pure function of the zone.
//
//	name in the zone, known        A: the address; other types: no data
//	name in the zone, unknown      NXDOMAIN
//	PTR of a known address         the FQDN
//	PTR in the VNET, unknown       NXDOMAIN
//	a public IP's name             A: its (host) address
//	anything else                  REFUSED (no recursion, no upstream)
//
// Negative answers carry the zone's SOA in the authority section.
func (s *Server) answer(z *zone, r *mdns.Msg) *mdns.Msg {
	m := new(mdns.Msg)
	switch {
	case r.Response || r.Opcode != mdns.OpcodeQuery:
		return m.SetRcode(r, mdns.RcodeNotImplemented)
	case len(r.Question) != 1:
		return m.SetRcodeFormatError(r)
	}
	m.SetReply(r)
	m.Compress = true
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(max(opt.UDPSize(), mdns.MinMsgSize), false)
	}
	q := r.Question[0]
	if q.Qclass != mdns.ClassINET && q.Qclass != mdns.ClassANY {
		m.Rcode = mdns.RcodeRefused
		return m
	}
	name := strings.ToLower(mdns.Fqdn(q.Name))
	switch {
	case name == s.suffix:
		s.apex(z, m, q)
	case strings.HasSuffix(name, "."+s.suffix):
		s.host(z, m, q, strings.TrimSuffix(name, "."+s.suffix))
	case strings.Count(name, ".") == 1 && name != ".":
		// A single label: the short computer name.
		s.host(z, m, q, strings.TrimSuffix(name, "."))
	case strings.HasSuffix(name, reverseSuffix):
		s.reverse(z, m, q, name)
	case s.hasPublic(name):
		s.publicHost(m, q, name)
	default:
		m.Rcode = mdns.RcodeRefused
	}
	return m
}

func (s *Server) header(name string, typ uint16) mdns.RR_Header {
	return mdns.RR_Header{Name: name, Rrtype: typ, Class: mdns.ClassINET, Ttl: s.ttl}
}

// soa is the zone's SOA record, owned by owner.
func (s *Server) soa(z *zone, owner string) mdns.RR {
	return &mdns.SOA{
		Hdr:     s.header(owner, mdns.TypeSOA),
		Ns:      "ns1." + s.suffix,
		Mbox:    "hostmaster." + s.suffix,
		Serial:  z.serial,
		Refresh: 3600,
		Retry:   300,
		Expire:  86400,
		Minttl:  s.ttl,
	}
}

// negative finishes m as NXDOMAIN (or NODATA when nxdomain is false).
func (s *Server) negative(z *zone, m *mdns.Msg, owner string, nxdomain bool) {
	m.Authoritative = true
	if nxdomain {
		m.Rcode = mdns.RcodeNameError
	}
	m.Ns = append(m.Ns, s.soa(z, owner))
}

func (s *Server) apex(z *zone, m *mdns.Msg, q mdns.Question) {
	if q.Qtype == mdns.TypeSOA || q.Qtype == mdns.TypeANY {
		m.Authoritative = true
		m.Answer = append(m.Answer, s.soa(z, q.Name))
		return
	}
	s.negative(z, m, s.suffix, false)
}

func (s *Server) host(z *zone, m *mdns.Msg, q mdns.Question, label string) {
	ip, ok := z.byName[label]
	if !ok {
		s.negative(z, m, s.suffix, true)
		return
	}
	if q.Qtype != mdns.TypeA && q.Qtype != mdns.TypeANY {
		s.negative(z, m, s.suffix, false)
		return
	}
	m.Authoritative = true
	m.Answer = append(m.Answer, &mdns.A{Hdr: s.header(q.Name, mdns.TypeA), A: ip.AsSlice()})
}

func (s *Server) hasPublic(name string) bool {
	_, ok := s.publicAddr(name)
	return ok
}

// publicHost answers the name of a public IP (not authoritative: the zone
// is Azure's public cloudapp.azure.com).
func (s *Server) publicHost(m *mdns.Msg, q mdns.Question, name string) {
	ip, _ := s.publicAddr(name)
	if q.Qtype != mdns.TypeA && q.Qtype != mdns.TypeANY {
		return // NODATA
	}
	m.Answer = append(m.Answer, &mdns.A{Hdr: s.header(q.Name, mdns.TypeA), A: ip.AsSlice()})
}

// reverse answers names under in-addr.arpa.
func (s *Server) reverse(z *zone, m *mdns.Msg, q mdns.Question, name string) {
	octets := strings.Split(strings.TrimSuffix(name, reverseSuffix), ".")
	if len(octets) > 4 {
		m.Rcode = mdns.RcodeRefused
		return
	}
	var b [4]byte
	for i, o := range octets {
		v, err := strconv.ParseUint(o, 10, 8)
		if err != nil || (len(o) > 1 && o[0] == '0') {
			m.Rcode = mdns.RcodeRefused
			return
		}
		b[len(octets)-1-i] = byte(v)
	}
	asked := netip.PrefixFrom(netip.AddrFrom4(b), 8*len(octets))
	zoneName, inVNET := s.reverseZone(asked)
	if len(octets) < 4 {
		// A name such as 1.0.10.in-addr.arpa inside the VNET's reverse
		// zone exists, without data of its own.
		if !inVNET {
			m.Rcode = mdns.RcodeRefused
			return
		}
		s.negative(z, m, zoneName, false)
		return
	}
	ip := asked.Addr()
	host, known := z.byIP[ip]
	if known && !inVNET {
		zoneName = reverseName(netip.PrefixFrom(ip, 24))
	}
	switch {
	case !known && !inVNET:
		m.Rcode = mdns.RcodeRefused
	case !known:
		s.negative(z, m, zoneName, true)
	case q.Qtype != mdns.TypePTR && q.Qtype != mdns.TypeANY:
		s.negative(z, m, zoneName, false)
	default:
		m.Authoritative = true
		m.Answer = append(m.Answer, &mdns.PTR{Hdr: s.header(q.Name, mdns.TypePTR), Ptr: host + "." + s.suffix})
	}
}

// reverseZone returns the in-addr.arpa zone of the VNET that holds the
// asked prefix: each VNET prefix widened to an octet boundary
// (10.0.0.0/16 -> 0.10.in-addr.arpa.). For full addresses (/32) the
// address must lie in the VNET prefix itself.
func (s *Server) reverseZone(asked netip.Prefix) (string, bool) {
	for _, p := range s.prefixes {
		zp := netip.PrefixFrom(p.Addr(), p.Bits()/8*8).Masked()
		if asked.Bits() < zp.Bits() || !zp.Contains(asked.Addr()) {
			continue
		}
		if asked.Bits() == 32 && !p.Contains(asked.Addr()) {
			continue
		}
		return reverseName(zp), true
	}
	return "", false
}

// reverseName names the reverse zone of an octet-aligned prefix.
func reverseName(p netip.Prefix) string {
	b := p.Addr().As4()
	var labels []string
	for i := p.Bits()/8 - 1; i >= 0; i-- {
		labels = append(labels, strconv.Itoa(int(b[i])))
	}
	return strings.Join(append(labels, "in-addr.arpa."), ".")
}
