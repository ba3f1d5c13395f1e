package vnet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"github.com/vmss-emulator/vmss/nsnet"
	"golang.org/x/sys/unix"
)

// LinkGroup is the interface group (IFLA_GROUP) of every bridge and
// VNET-side veth vmss creates, so Delete removes them all in one kernel
// batch ("vmss" in ASCII).
const LinkGroup = 0x766d7373

// detachGroup holds veths that a Detach of several is about to delete.
const detachGroup = LinkGroup + 1

// transient reports whether a netlink error may go away on its own: a dump
// interrupted by a concurrent change, or a kernel that is briefly busy.
func transient(err error) bool {
	for _, e := range []error{netlink.ErrDumpInterrupted, unix.EBUSY, unix.EAGAIN, unix.EINTR, unix.ENOBUFS} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

const (
	retryAttempts = 8
	retryFirst    = time.Millisecond
	retryMax      = 100 * time.Millisecond
)

// retry runs fn until it succeeds, fails with a non-transient error, has
// been tried retryAttempts times or ctx ends, backing off exponentially.
func retry(ctx context.Context, fn func() error) error {
	_, err := retryGet(ctx, func() (struct{}, error) { return struct{}{}, fn() })
	return err
}

func retryGet[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	delay := retryFirst
	for attempt := 1; ; attempt++ {
		v, err := fn()
		if err == nil || !transient(err) || attempt == retryAttempts {
			return v, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, errors.Join(err, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, retryMax)
	}
}

// handleIn returns a rtnetlink handle whose socket lives in the named
// namespace. The caller closes it.
func handleIn(ns string) (*netlink.Handle, error) {
	var h *netlink.Handle
	err := nsnet.Do(nsnet.Path(ns), func() (err error) {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlink in namespace %s: %w", ns, err)
	}
	if err := h.SetSocketTimeout(10 * time.Second); err != nil {
		h.Close()
		return nil, fmt.Errorf("netlink in namespace %s: %w", ns, err)
	}
	return h, nil
}

// writeSysctls writes /proc/sys values inside a namespace. Keys are paths
// relative to /proc/sys, e.g. "net/ipv4/ip_forward".
func writeSysctls(ns string, kv [][2]string) error {
	return nsnet.Do(nsnet.Path(ns), func() error {
		for _, e := range kv {
			p := filepath.Join("/proc/sys", e[0])
			if err := os.WriteFile(p, []byte(e[1]), 0o644); err != nil {
				return fmt.Errorf("set %s=%s in namespace %s: %w", e[0], e[1], ns, err)
			}
		}
		return nil
	})
}

// readSysctl reads one /proc/sys value inside a namespace.
func readSysctl(ns, key string) (string, error) {
	var v []byte
	err := nsnet.Do(nsnet.Path(ns), func() (err error) {
		v, err = os.ReadFile(filepath.Join("/proc/sys", key))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("read %s in namespace %s: %w", key, ns, err)
	}
	for len(v) > 0 && (v[len(v)-1] == '\n' || v[len(v)-1] == ' ') {
		v = v[:len(v)-1]
	}
	return string(v), nil
}

// deleteGroup removes every link of a group in a namespace with one
// RTM_DELLINK, which the kernel handles as a single batch (one RCU grace
// period for all links instead of one each).
func deleteGroup(ctx context.Context, ns string, group uint32) error {
	return retry(ctx, func() error {
		return nsnet.Do(nsnet.Path(ns), func() error {
			req := nl.NewNetlinkRequest(unix.RTM_DELLINK, unix.NLM_F_ACK)
			req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
			req.AddData(nl.NewRtAttr(unix.IFLA_GROUP, nl.Uint32Attr(group)))
			_, err := req.Execute(unix.NETLINK_ROUTE, 0)
			if errors.Is(err, unix.ENODEV) {
				return nil // no link in the group
			}
			if err != nil {
				return fmt.Errorf("delete vmss links in namespace %s: %w", ns, err)
			}
			return nil
		})
	})
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// linkList lists the links of a namespace.
func linkList(ctx context.Context, h *netlink.Handle) ([]netlink.Link, error) {
	links, err := retryGet(ctx, h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	return links, nil
}

// ipv4Addrs returns the IPv4 addresses of a link.
func ipv4Addrs(ctx context.Context, h *netlink.Handle, l netlink.Link) ([]netip.Prefix, error) {
	addrs, err := retryGet(ctx, func() ([]netlink.Addr, error) { return h.AddrList(l, netlink.FAMILY_V4) })
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", l.Attrs().Name, err)
	}
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, toPrefix(a))
	}
	return out, nil
}

func toPrefix(a netlink.Addr) netip.Prefix {
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Prefix{}
	}
	ones, _ := a.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones)
}

func toAddr(p netip.Prefix) *netlink.Addr {
	a, err := netlink.ParseAddr(p.String())
	if err != nil {
		panic(err) // p comes from a valid netip.Prefix
	}
	return a
}

// linkIPv4Addrs returns the IPv4 addresses of link l in namespace ns (whose
// handle is h), as ipv4Addrs does, asking the kernel for that link's alone
// (see dumpLinkAddrs). AddrList asks for every address of the namespace and
// filters here, and the kernel walks every link for it: in a VNET,
// thousands of veths for each instance that attaches. Kernels without
// strict checking get AddrList.
func linkIPv4Addrs(ctx context.Context, ns string, h *netlink.Handle, l netlink.Link) ([]netip.Prefix, error) {
	index := l.Attrs().Index
	msgs, err := dumpLinkAddrs(ctx, ns, index)
	if errors.Is(err, errNoStrictCheck) {
		return ipv4Addrs(ctx, h, l)
	}
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", l.Attrs().Name, err)
	}
	var out []netip.Prefix
	for _, m := range msgs {
		msg := nl.DeserializeIfAddrmsg(m)
		if int(msg.Index) != index || msg.Family != unix.AF_INET {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[msg.Len():])
		if err != nil {
			return nil, fmt.Errorf("list addresses of %s: %w", l.Attrs().Name, err)
		}
		// The local address, as AddrList gives it (on a point-to-point
		// link IFA_ADDRESS is the peer's).
		var local, addr []byte
		for _, a := range attrs {
			switch a.Attr.Type {
			case unix.IFA_LOCAL:
				local = a.Value
			case unix.IFA_ADDRESS:
				addr = a.Value
			}
		}
		if local == nil {
			local = addr
		}
		ip, ok := netip.AddrFromSlice(local)
		if !ok {
			continue
		}
		out = append(out, netip.PrefixFrom(ip.Unmap(), int(msg.Prefixlen)))
	}
	return out, nil
}

// errNoStrictCheck: the kernel has no NETLINK_GET_STRICT_CHK (before 4.20).
var errNoStrictCheck = errors.New("netlink sockets without strict checking")

// dumpLinkAddrs returns the kernel's RTM_NEWADDR messages for the IPv4
// addresses of link index in namespace ns: a dump filtered by the kernel,
// which honours the index of the request on a socket with strict checking.
func dumpLinkAddrs(ctx context.Context, ns string, index int) ([][]byte, error) {
	var sock *nl.NetlinkSocket
	err := nsnet.Do(nsnet.Path(ns), func() (err error) {
		sock, err = nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlink in namespace %s: %w", ns, err)
	}
	defer sock.Close()
	if err := unix.SetsockoptInt(sock.GetFd(), unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1); err != nil {
		return nil, fmt.Errorf("%w: %w", errNoStrictCheck, err)
	}
	tv := unix.NsecToTimeval((10 * time.Second).Nanoseconds())
	_ = sock.SetSendTimeout(&tv)
	_ = sock.SetReceiveTimeout(&tv)
	return retryGet(ctx, func() ([][]byte, error) {
		req := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
		msg := nl.NewIfAddrmsg(unix.AF_INET)
		msg.Index = uint32(index)
		req.AddData(msg)
		req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: sock}}
		return req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWADDR)
	})
}
