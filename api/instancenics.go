package api

import (
	"strings"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// The network interfaces of scale-set instances, as the network provider
// serves them under the scale set's path (az vmss nic list|list-vm-nics|show,
// the SDKs' ListVirtualMachineScaleSetNetworkInterfaces): one per NIC
// configuration of the model, its ip configurations in the configuration's
// subnet; the primary one carries the instance's private IP address and, with
// publicIPAddressConfiguration, a reference to the instance's own public IP
// (model.InstanceNICs renders them).

// liveInstanceNICs answers the NICs of the instance a path names, as
// instanceNet finds it; an instance being deleted has none to show.
func liveInstanceNICs(st *model.State, req *request) ([]arm.NetworkInterface, *arm.Error) {
	ss, in, e := instanceNet(st, req)
	if e != nil {
		return nil, e
	}
	if in.Deleting {
		return nil, arm.NotFound(req.id(1).String() + "/virtualMachines/" + req.r.PathValue("instance"))
	}
	return model.InstanceNICs(ss, in), nil
}

// listScaleSetNICs serves GET .../virtualMachineScaleSets/{name}/networkInterfaces
// and .../virtualMachines/{instance}/networkInterfaces.
func (s *Server) listScaleSetNICs(req *request) {
	id := req.id(1)
	var out []arm.NetworkInterface
	var e *arm.Error
	s.Store.View(func(st *model.State) {
		if req.r.PathValue("instance") != "" {
			out, e = liveInstanceNICs(st, req)
			return
		}
		ss, ok := st.ScaleSets[id.Key()]
		if !ok {
			e = arm.NotFound(id.String())
			return
		}
		for _, in := range ss.SortedInstances() {
			if !in.Deleting {
				out = append(out, model.InstanceNICs(ss, in)...)
			}
		}
	})
	if e != nil {
		writeErr(req.w, e)
		return
	}
	writePage(s, req, out)
}

// getScaleSetNIC serves GET .../virtualMachines/{instance}/networkInterfaces/{nic}.
func (s *Server) getScaleSetNIC(req *request) {
	id, inst, name := req.id(1), req.r.PathValue("instance"), req.r.PathValue("nic")
	var out *arm.NetworkInterface
	s.Store.View(func(st *model.State) {
		nics, _ := liveInstanceNICs(st, req)
		for _, n := range nics {
			if strings.EqualFold(n.Name, name) {
				out = &n
			}
		}
	})
	if out == nil {
		writeErr(req.w, arm.NotFound(id.String()+"/virtualMachines/"+inst+"/networkInterfaces/"+name))
		return
	}
	writeJSON(req.w, 200, out)
}
