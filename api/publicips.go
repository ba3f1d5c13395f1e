package api

import (
	"strings"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// instanceNet finds the scale set and instance of a path under
// .../virtualMachineScaleSets/{name}/virtualMachines/{instance}.
func instanceNet(st *model.State, req *request) (*model.ScaleSet, *model.Instance, *arm.Error) {
	setID, instID := req.id(1), req.r.PathValue("instance")
	ss, ok := st.ScaleSets[setID.Key()]
	if !ok {
		return nil, nil, arm.NotFound(setID.String())
	}
	in, ok := ss.Instances[instID]
	if !ok {
		return nil, nil, arm.NotFound(setID.String() + "/virtualMachines/" + instID)
	}
	return ss, in, nil
}

// listScaleSetPublicIPs serves GET .../virtualMachineScaleSets/{name}/publicIPAddresses
// (PublicIPAddresses_ListVirtualMachineScaleSetPublicIPAddresses): every
// instance's own public IP.
func (s *Server) listScaleSetPublicIPs(req *request) {
	id := req.id(1)
	var out []arm.PublicIPAddress
	var e *arm.Error
	s.Store.View(func(st *model.State) {
		ss, ok := st.ScaleSets[id.Key()]
		if !ok {
			e = arm.NotFound(id.String())
			return
		}
		out = model.InstancePublicIPs(ss)
	})
	if e != nil {
		writeErr(req.w, e)
		return
	}
	writeJSON(req.w, 200, map[string]any{"value": out})
}

// instancePublicIPs are the public IPs of one instance's NIC ip
// configuration, checking that the NIC and ip configuration exist.
func (s *Server) instancePublicIPs(req *request) ([]arm.PublicIPAddress, *arm.Error) {
	var out []arm.PublicIPAddress
	var e *arm.Error
	s.Store.View(func(st *model.State) {
		ss, in, err := instanceNet(st, req)
		if err != nil {
			e = err
			return
		}
		nicName, ipName := req.r.PathValue("nic"), req.r.PathValue("ipconf")
		var ipc *arm.NICIPConfiguration
		for _, nic := range model.InstanceNICs(ss, in) {
			if !strings.EqualFold(nic.Name, nicName) {
				continue
			}
			for i := range nic.Properties.IPConfigurations {
				if strings.EqualFold(nic.Properties.IPConfigurations[i].Name, ipName) {
					ipc = &nic.Properties.IPConfigurations[i]
				}
			}
		}
		if ipc == nil {
			e = arm.NotFound(ss.Model.ID + "/virtualMachines/" + in.ID + "/networkInterfaces/" + nicName + "/ipConfigurations/" + ipName)
			return
		}
		out = []arm.PublicIPAddress{}
		if p := model.InstancePublicIP(ss, in); p != nil && ipc.Properties.PublicIPAddress != nil {
			out = append(out, *p)
		}
	})
	return out, e
}

// listInstancePublicIPs serves GET .../virtualMachines/{instance}/networkInterfaces/{nic}/ipConfigurations/{ipconf}/publicIPAddresses
// (PublicIPAddresses_ListVirtualMachineScaleSetVMPublicIPAddresses).
func (s *Server) listInstancePublicIPs(req *request) {
	out, e := s.instancePublicIPs(req)
	if e != nil {
		writeErr(req.w, e)
		return
	}
	writeJSON(req.w, 200, map[string]any{"value": out})
}

// getInstancePublicIP serves GET .../ipConfigurations/{ipconf}/publicIPAddresses/{pip}
// (PublicIPAddresses_GetVirtualMachineScaleSetPublicIPAddress).
func (s *Server) getInstancePublicIP(req *request) {
	out, e := s.instancePublicIPs(req)
	if e != nil {
		writeErr(req.w, e)
		return
	}
	name := req.r.PathValue("pip")
	for _, p := range out {
		if strings.EqualFold(p.Name, name) {
			writeJSON(req.w, 200, p)
			return
		}
	}
	writeErr(req.w, arm.NotFound(req.r.URL.Path))
}
