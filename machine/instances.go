package machine

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/instance"
	"github.com/vmss-emulator/vmss/machine/workload"
	"github.com/vmss-emulator/vmss/reconcile"
	"github.com/vmss-emulator/vmss/vnet"
)

// Instances observes the instances that exist.
func (m *Machine) Instances(ctx context.Context) (map[string]reconcile.Observed, error) {
	names, err := m.inst.List(ctx)
	if err != nil && len(names) == 0 {
		return nil, err
	}
	out := make(map[string]reconcile.Observed, len(names))
	for _, n := range names {
		out[n] = m.observe(n)
	}
	return out, nil
}

// LookInstances observes the named instances that exist, looking at those
// only (reconcile.InstanceLooker).
func (m *Machine) LookInstances(ctx context.Context, names []string) (map[string]reconcile.Observed, error) {
	present, err := m.inst.Present(ctx, names)
	if err != nil && len(present) == 0 {
		return nil, err
	}
	out := make(map[string]reconcile.Observed, len(names))
	for n, ok := range present {
		if ok {
			out[n] = m.observe(n)
		}
	}
	return out, nil
}

// observe is what exists of one instance that exists.
func (m *Machine) observe(n string) reconcile.Observed {
	r, _ := m.records.read(n) // a missing or unreadable record is a partial instance: rebuilt
	o := reconcile.Observed{
		Complete: r.Complete, BuildGen: r.BuildGen, RestartGen: r.RestartGen, ModelGen: r.ModelGen,
		Extensions: r.Extensions, SSHEndpoint: m.plane.Endpoint(n),
		Started: m.ssh.Serving(n), Health: m.work.Health(n),
	}
	for _, p := range m.plane.Probes(n) {
		o.Probes = append(o.Probes, reconcile.ProbeHealth{LoadBalancer: p.LoadBalancer, Probe: p.Probe, State: p.State})
	}
	return o
}

// CreateInstance builds the instance's namespaces, files, NIC and host keys.
func (m *Machine) CreateInstance(ctx context.Context, in reconcile.InstanceSpec) error {
	m.ssh.Creating()
	m.plane.ForgetFilter(in.Netns) // a rebuilt namespace has none of the old one's filter
	// A record marks an instance being built as incomplete (and says where
	// its NIC goes). A new instance has none, which reads the same: a crash
	// before the complete record leaves a partial instance either way.
	if _, ok := m.records.read(in.Netns); ok {
		if err := m.records.update(in.Netns, func(r *record) { *r = record{VNetNetns: in.VNetNetns} }); err != nil {
			return err
		}
	}
	spec := instance.Spec{
		Name:         in.Netns,
		Hostname:     in.ComputerName,
		AdminUser:    in.AdminUser,
		PrivateIP:    in.Addr.Addr(),
		SearchDomain: in.DNSSuffix,
	}
	if err := m.inst.Create(ctx, spec); err != nil {
		return err
	}
	mac, err := parseMAC(in.MAC)
	if err != nil {
		return err
	}
	if err := m.vnets.Attach(ctx, in.VNetNetns, vnet.NIC{
		InstanceNetns: in.Netns, Bridge: in.Bridge, Addr: in.Addr, Gateway: in.Gateway, MAC: mac,
	}); err != nil {
		return fmt.Errorf("attach %s to its subnet: %w", in.VMName, err)
	}
	if _, err := m.ssh.HostKeys(in.Netns, in.VMName); err != nil {
		return err
	}
	return m.records.update(in.Netns, func(r *record) {
		*r = record{Complete: true, BuildGen: in.BuildGen, VNetNetns: in.VNetNetns}
	})
}

// StartInstance serves SSH inside the instance and starts its workload.
func (m *Machine) StartInstance(ctx context.Context, in reconcile.InstanceSpec, rerun bool) error {
	if err := m.ssh.Serve(ctx, in); err != nil {
		return err
	}
	key := fmt.Sprintf("%d/%d/%d", in.BuildGen, in.RestartGen, in.ModelGen)
	r, _ := m.records.read(in.Netns) // no record: the workload never ran
	// Adopting a started instance (after a daemon restart): its workload
	// kept running, unless something ended it; then it runs again.
	gone := !rerun && r.WorkKey == key && len(r.Workloads) > 0 && !anyAlive(r.Workloads)
	if gone {
		m.log.Info("the instance's workload is gone: running its extensions again", "instance", in.VMName, "processes", r.Workloads)
	}
	workloads := r.Workloads
	if rerun || gone || r.WorkKey != key {
		if rerun || gone {
			// A restart or an upgrade ends the old workload first (and
			// whatever a gone one left).
			m.work.ForgetWorkloads(in.Netns)
			if err := m.inst.Stop(ctx, in.Netns); err != nil {
				return err
			}
		}
		// A start or restart of what already ran (same build and model)
		// boots it: its known workloads are not waited for again. A first
		// run, an upgrade, a rerun after a failure or after the workload
		// died on its own tells them anew.
		ranFor := fmt.Sprintf("%d/%d", in.BuildGen, in.ModelGen)
		var views []arm.ExtensionView
		var err error
		if !gone && r.RanFor == ranFor {
			views, err = m.work.BootExtensions(ctx, in, r.WorkloadSteps)
		} else {
			views, err = m.work.RunExtensions(ctx, in)
		}
		workloads = m.work.Workloads(in.Netns)
		if err != nil {
			if rerr := m.records.update(in.Netns, func(r *record) { r.Extensions, r.Workloads, r.RanFor = views, workloads, "" }); rerr != nil {
				m.log.Warn("instance record: extension results not kept", "instance", in.VMName, "err", rerr)
			}
			return err
		}
		m.work.StartHealth(in)
		var steps []string
		for _, p := range workloads {
			steps = append(steps, p.Step)
		}
		// One write for the results and the generations (a crash before
		// it runs the extensions again, as it would between two writes).
		return m.records.update(in.Netns, func(r *record) {
			r.Extensions = views
			r.RestartGen, r.ModelGen, r.WorkKey, r.Workloads = in.RestartGen, in.ModelGen, key, workloads
			r.RanFor, r.WorkloadSteps = ranFor, steps
		})
	}
	m.work.StartHealth(in)
	return m.records.update(in.Netns, func(r *record) {
		r.RestartGen, r.ModelGen, r.WorkKey, r.Workloads = in.RestartGen, in.ModelGen, key, workloads
	})
}

// StopInstance ends SSH sessions and kills every process of the instance.
func (m *Machine) StopInstance(ctx context.Context, netns string) error {
	m.work.StopHealth(netns)
	m.work.ForgetWorkloads(netns)
	m.ssh.Stop(netns)
	if err := m.inst.Stop(ctx, netns); err != nil {
		return err
	}
	if _, ok := m.records.read(netns); ok {
		return m.records.update(netns, func(r *record) { r.WorkKey, r.Workloads = "", nil })
	}
	return nil
}

// DeleteInstance removes the instance, its keys, logs and record. Its
// probes and SSH sessions end first; Delete then kills every process (no
// Stop before it: that would kill, sweep and write the record once more).
func (m *Machine) DeleteInstance(ctx context.Context, netns string) error {
	m.work.StopHealth(netns)
	m.work.ForgetWorkloads(netns)
	m.ssh.Stop(netns)
	if err := m.inst.Delete(ctx, netns); err != nil {
		return err
	}
	// The kernel tears a deleted namespace down asynchronously; remove the
	// veth pair now so a rebuild can attach again at once.
	rec, _ := m.records.read(netns) // no record: detach from every open VNET
	m.plane.Forget(netns)
	vnets := []string{rec.VNetNetns}
	if rec.VNetNetns == "" {
		vnets = m.spaces.Opened()
	}
	for _, v := range vnets {
		if err := m.vnets.Detach(ctx, v, vnet.VethName(netns)); err != nil {
			return fmt.Errorf("detach %s: %w", netns, err)
		}
	}
	m.ssh.DropKeys(netns) // no background key generation writes into the directory removed now
	for _, d := range []string{m.ssh.KeyDir(netns), m.work.LogDir(netns)} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	return m.records.remove(netns)
}

// anyAlive reports whether one of the processes still runs.
func anyAlive(ps []workload.Proc) bool {
	for _, p := range ps {
		if p.Alive() {
			return true
		}
	}
	return false
}

func parseMAC(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	var b [6]byte
	n, err := fmt.Sscanf(strings.ReplaceAll(s, "-", ":"), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5])
	if err != nil || n != 6 {
		return nil, fmt.Errorf("MAC address %q is not valid", s)
	}
	return b[:], nil
}
