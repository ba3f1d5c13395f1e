package vnet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Earlier versions named an instance's veth with 32 bits of a hash, and
// two of 4,096 instances in one VNET shared a name with a probability of
// 0.2%. Pairs they made are renamed to VethName when the daemon finds them:
// by Ensure for every pair of the VNET, and by Attach for its instance.

// legacyVethName is the name earlier versions gave an instance's veth:
// vmssv + the first 8 hex digits of the SHA-256. Attach adopts such a pair
// under VethName.
func legacyVethName(instanceNetns string) string {
	sum := sha256.Sum256([]byte(instanceNetns))
	return VethPrefix + hex.EncodeToString(sum[:4])
}

// isLegacyVethName reports whether name has the shape of legacyVethName.
func isLegacyVethName(name string) bool {
	rest, ok := strings.CutPrefix(name, VethPrefix)
	if !ok || len(rest) != 8 {
		return false
	}
	_, err := hex.DecodeString(rest)
	return err == nil
}

// adoptLegacy renames the instance's pair from legacyVethName to its
// HostSideName, if an earlier version made it, and returns it; nil if
// there is no such pair. Attach sets it up again.
func (m *Manager) adoptLegacy(ctx context.Context, vh *netlink.Handle, instFd netns.NsHandle, eth0 netlink.Link, n NIC) (netlink.Link, error) {
	old := legacyVethName(n.InstanceNetns)
	l, err := retryGet(ctx, func() (netlink.Link, error) { return vh.LinkByName(old) })
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", old, err)
	}
	if ok, _ := isPeer(vh, l, instFd, eth0); !ok {
		return nil, nil // another instance's pair, named by the old scheme
	}
	if err := m.rename(ctx, vh, l, n.InstanceNetns, n.HostSideName); err != nil {
		return nil, err
	}
	return retryGet(ctx, func() (netlink.Link, error) { return vh.LinkByName(n.HostSideName) })
}

// renameLegacy renames the VNET's veths that carry the legacy name of the
// instance their peer is in (links: the VNET's links, h: its handle).
func (m *Manager) renameLegacy(ctx context.Context, h *netlink.Handle, vnetNetns string, links []netlink.Link) error {
	byID := map[int][]netlink.Link{}
	for _, l := range links {
		if a := l.Attrs(); l.Type() == "veth" && a.NetNsID >= 0 && isLegacyVethName(a.Name) {
			byID[a.NetNsID] = append(byID[a.NetNsID], l)
		}
	}
	if len(byID) == 0 {
		return nil
	}
	named, err := nameNamespaces(h, vnetNetns, func(id int) bool { return byID[id] != nil })
	if err != nil {
		return err
	}
	for id, inst := range named {
		for _, l := range byID[id] {
			if l.Attrs().Name != legacyVethName(inst) {
				continue
			}
			if err := m.rename(ctx, h, l, inst, VethName(inst)); err != nil {
				return err
			}
			if err := retry(ctx, func() error { return h.LinkSetUp(l) }); err != nil {
				return fmt.Errorf("set %s up: %w", VethName(inst), err)
			}
		}
	}
	return nil
}

// rename renames l, an instance's veth, to name. A veth is renamed only
// while down: the instance loses its link for the moment this takes, once.
// The caller sets it up again.
func (m *Manager) rename(ctx context.Context, h *netlink.Handle, l netlink.Link, inst, name string) error {
	old := l.Attrs().Name
	if err := retry(ctx, func() error { return h.LinkSetDown(l) }); err != nil {
		return fmt.Errorf("set %s down to rename it: %w", old, err)
	}
	if err := retry(ctx, func() error { return h.LinkSetName(l, name) }); err != nil {
		return fmt.Errorf("rename %s to %s: %w", old, name, err)
	}
	m.log().Info("renamed an instance's veth made by an earlier version", "instance", inst, "from", old, "to", name)
	return nil
}
