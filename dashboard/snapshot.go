package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/vmss-emulator/vmss/arm"
)

// APIVersion is the api-version of the dashboard's ARM calls (the CLI's).
const APIVersion = "2024-03-01"

// Snapshot is everything the page shows.
type Snapshot struct {
	Seq      int64      `json:"seq"`
	Time     time.Time  `json:"time"`
	ReadOnly bool       `json:"readOnly"`
	Groups   []Group    `json:"groups"`
	Activity []Activity `json:"activity"`
	BuildMS  float64    `json:"buildMs"` // time the server took to build it
	// CPUGrain is the CPU charts' grain in seconds.
	CPUGrain float64 `json:"cpuGrain"`
	// CPUSpan is the time the CPU charts cover, in seconds, up to Time.
	CPUSpan float64 `json:"cpuSpan"`

	autoscale []Activity // autoscale decisions read by this build
}

// Group is a resource group and what it holds.
type Group struct {
	Name          string            `json:"name"`
	Location      string            `json:"location"`
	ScaleSets     []ScaleSet        `json:"scaleSets"`
	VMs           []json.RawMessage `json:"vms"`
	LoadBalancers []LoadBalancer    `json:"loadBalancers"`
	VNets         []json.RawMessage `json:"vnets"`
	Deployments   []Deployment      `json:"deployments"`
}

// ScaleSet is a scale set's model and its instances.
type ScaleSet struct {
	ID            string     `json:"id"`
	Name          string     `json:"name"`
	Capacity      int        `json:"capacity"`
	Size          string     `json:"size"`
	Image         string     `json:"image"`
	UpgradePolicy string     `json:"upgradePolicy"`
	Overprovision bool       `json:"overprovision"`
	AdminUser     string     `json:"adminUser"`
	Provisioning  string     `json:"provisioningState"`
	Instances     []Instance `json:"instances"`
	// CPU is the set's Percentage CPU (average of its instances) per grain.
	CPU []CPUPoint `json:"cpu"`
	// Autoscale is the latest decision of an autoscale setting on the set.
	Autoscale *Decision `json:"autoscale,omitempty"`
}

// Instance is one row of a scale set's instance table.
type Instance struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	ComputerName string `json:"computerName"`
	PrivateIP    string `json:"privateIp"`
	FD           int    `json:"fd"`
	UD           int    `json:"ud"`
	Power        string `json:"power"`
	Provisioning string `json:"provisioningState"`
	Health       string `json:"health"`
	LatestModel  bool   `json:"latestModel"`
	SSH          string `json:"ssh,omitempty"` // ssh -p PORT user@ADDR through the load balancer's NAT
	LB           string `json:"lb,omitempty"`  // probe state in the load balancers (Up, Down, Draining, Unknown)
	// CPU is the instance's Percentage CPU over the latest samples; nil before the first.
	CPU *float64 `json:"cpu,omitempty"`
}

// LoadBalancer is a load balancer's model with its data-plane view.
type LoadBalancer struct {
	ID     string          `json:"id"`
	Name   string          `json:"name"`
	Model  json.RawMessage `json:"model"`
	Health json.RawMessage `json:"health"`
}

// Deployment is a deployment with its operations.
type Deployment struct {
	Name       string          `json:"name"`
	State      string          `json:"state"`
	Error      json.RawMessage `json:"error,omitempty"`
	Operations json.RawMessage `json:"operations"`
}

// Activity is one entry of the activity log.
type Activity struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"` // scale, instance, probe, deployment
	Subject string    `json:"subject"`
	Text    string    `json:"text"`
}

// armGet calls the ARM handler in process and decodes its answer.
func armGet(ctx context.Context, h http.Handler, path string, query url.Values, out any) error {
	if query == nil {
		query = url.Values{}
	}
	query.Set("api-version", arm.VersionFor(path, APIVersion))
	type page struct {
		Value    []json.RawMessage `json:"value"`
		NextLink string            `json:"nextLink,omitempty"`
	}
	var all []json.RawMessage
	for u := path + "?" + query.Encode(); ; {
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			return fmt.Errorf("GET %s: %d %s", path, rec.Code, strings.TrimSpace(rec.Body.String()))
		}
		// A list longer than a page continues at its nextLink.
		var p page
		if json.Unmarshal(rec.Body.Bytes(), &p) != nil || (p.NextLink == "" && all == nil) {
			return json.Unmarshal(rec.Body.Bytes(), out)
		}
		all = append(all, p.Value...)
		if p.NextLink == "" || p.NextLink == u {
			b, err := json.Marshal(page{Value: all})
			if err != nil {
				return err
			}
			return json.Unmarshal(b, out)
		}
		u = p.NextLink
	}
}

type list[T any] struct {
	Value []T `json:"value"`
}

type armRes struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Location   string          `json:"location"`
	Properties json.RawMessage `json:"properties"`
}

// build reads the whole view through the ARM handler.
func (s *Server) build(ctx context.Context) (*Snapshot, error) {
	start := time.Now()
	sub := "/subscriptions/" + s.cfg.Subscription
	var groups list[armRes]
	if err := armGet(ctx, s.cfg.ARM, sub+"/resourceGroups", nil, &groups); err != nil {
		return nil, err
	}
	snap := &Snapshot{Time: start.UTC(), ReadOnly: s.cfg.ReadOnly}
	span, grain := cpuWindow(s.cfg.SampleInterval)
	snap.CPUGrain, snap.CPUSpan = grain.Seconds(), span.Seconds()
	evs := s.autoscaleEvents(ctx)
	snap.autoscale = s.autoscaleActivity(evs)
	for _, e := range evs {
		s.decisions[strings.ToLower(e.Decision.Target)] = e.decision()
	}
	sort.Slice(groups.Value, func(i, j int) bool { return groups.Value[i].Name < groups.Value[j].Name })
	for _, g := range groups.Value {
		rg := sub + "/resourceGroups/" + g.Name
		grp := Group{Name: g.Name, Location: g.Location, VMs: []json.RawMessage{}, VNets: []json.RawMessage{}, ScaleSets: []ScaleSet{}, LoadBalancers: []LoadBalancer{}, Deployments: []Deployment{}}
		var lbs list[armRes]
		if err := armGet(ctx, s.cfg.ARM, rg+"/providers/Microsoft.Network/loadBalancers", nil, &lbs); err != nil {
			return nil, err
		}
		// NAT forwards and probe states by backend address, for the instance rows.
		nat := map[string]string{}   // "10.0.0.4:22" -> "127.77.0.1:50000"
		state := map[string]string{} // backend address -> worst state
		for _, lb := range lbs.Value {
			raw, _ := json.Marshal(lb)
			var health healthView
			var hraw json.RawMessage
			if err := armGet(ctx, s.cfg.ARM, lb.ID+"/health", nil, &hraw); err == nil {
				_ = json.Unmarshal(hraw, &health)
			}
			if hraw == nil {
				hraw = json.RawMessage("null")
			}
			for _, f := range health.NAT {
				nat[f.Backend] = f.Frontend
			}
			for _, p := range health.Pools {
				for _, b := range p.Backends {
					if rank(b.State) > rank(state[b.Address]) {
						state[b.Address] = b.State
					}
				}
			}
			grp.LoadBalancers = append(grp.LoadBalancers, LoadBalancer{ID: lb.ID, Name: lb.Name, Model: raw, Health: hraw})
		}
		var sets list[scaleSetModel]
		if err := armGet(ctx, s.cfg.ARM, rg+"/providers/Microsoft.Compute/virtualMachineScaleSets", nil, &sets); err != nil {
			return nil, err
		}
		for _, m := range sets.Value {
			ss := m.view()
			var vms list[instanceModel]
			if err := armGet(ctx, s.cfg.ARM, m.ID+"/virtualMachines", nil, &vms); err != nil {
				return nil, err
			}
			cpuSeries, cpuNow := s.cpu(ctx, m.ID, start)
			ss.CPU = cpuSeries
			if ss.CPU == nil {
				ss.CPU = []CPUPoint{}
			}
			if d, ok := s.decisions[strings.ToLower(m.ID)]; ok {
				ss.Autoscale = &d
			}
			ss.Instances = make([]Instance, 0, len(vms.Value))
			for _, v := range vms.Value {
				in := v.view()
				if c, ok := cpuNow[in.ID]; ok {
					in.CPU = &c
				}
				if fe, ok := nat[in.PrivateIP+":22"]; ok && ss.AdminUser != "" {
					if host, port, ok := strings.Cut(fe, ":"); ok {
						in.SSH = "ssh -p " + port + " " + ss.AdminUser + "@" + host
					}
				}
				in.LB = state[in.PrivateIP]
				ss.Instances = append(ss.Instances, in)
			}
			grp.ScaleSets = append(grp.ScaleSets, ss)
		}
		var vms list[json.RawMessage]
		if err := armGet(ctx, s.cfg.ARM, rg+"/providers/Microsoft.Compute/virtualMachines", url.Values{"$expand": {"instanceView"}}, &vms); err == nil {
			grp.VMs = append(grp.VMs, vms.Value...)
		}
		var vnets list[json.RawMessage]
		if err := armGet(ctx, s.cfg.ARM, rg+"/providers/Microsoft.Network/virtualNetworks", nil, &vnets); err == nil {
			grp.VNets = append(grp.VNets, vnets.Value...)
		}
		var deps list[deploymentModel]
		if err := armGet(ctx, s.cfg.ARM, rg+"/providers/Microsoft.Resources/deployments", nil, &deps); err == nil {
			for _, d := range deps.Value {
				var ops json.RawMessage
				if err := armGet(ctx, s.cfg.ARM, d.ID+"/operations", nil, &ops); err != nil {
					ops = json.RawMessage("null")
				}
				grp.Deployments = append(grp.Deployments, Deployment{Name: d.Name, State: d.Properties.ProvisioningState, Error: d.Properties.Error, Operations: ops})
			}
		}
		snap.Groups = append(snap.Groups, grp)
	}
	if snap.Groups == nil {
		snap.Groups = []Group{}
	}
	snap.BuildMS = float64(time.Since(start).Microseconds()) / 1000
	return snap, nil
}

func rank(state string) int {
	switch state {
	case "Down":
		return 4
	case "Draining":
		return 3
	case "Unknown":
		return 2
	case "Up":
		return 1
	}
	return 0
}

type healthView struct {
	Pools []struct {
		Backends []struct {
			Address string `json:"address"`
			State   string `json:"state"`
		} `json:"backends"`
	} `json:"pools"`
	NAT []struct {
		Frontend string `json:"frontend"`
		Backend  string `json:"backend"`
	} `json:"nat"`
}

type scaleSetModel struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Sku  struct {
		Name     string `json:"name"`
		Capacity int    `json:"capacity"`
	} `json:"sku"`
	Properties struct {
		ProvisioningState string `json:"provisioningState"`
		Overprovision     *bool  `json:"overprovision"`
		UpgradePolicy     struct {
			Mode string `json:"mode"`
		} `json:"upgradePolicy"`
		VirtualMachineProfile struct {
			StorageProfile struct {
				ImageReference map[string]any `json:"imageReference"`
			} `json:"storageProfile"`
			OSProfile struct {
				AdminUsername string `json:"adminUsername"`
			} `json:"osProfile"`
		} `json:"virtualMachineProfile"`
	} `json:"properties"`
}

func (m scaleSetModel) view() ScaleSet {
	p := m.Properties
	img := ""
	if r := p.VirtualMachineProfile.StorageProfile.ImageReference; r != nil {
		if id, ok := r["id"].(string); ok && id != "" {
			img = id
		} else {
			var parts []string
			for _, k := range []string{"publisher", "offer", "sku", "version"} {
				if v, ok := r[k].(string); ok {
					parts = append(parts, v)
				}
			}
			img = strings.Join(parts, ":")
		}
	}
	return ScaleSet{
		ID: m.ID, Name: m.Name, Capacity: m.Sku.Capacity, Size: m.Sku.Name, Image: img,
		UpgradePolicy: p.UpgradePolicy.Mode, Overprovision: p.Overprovision == nil || *p.Overprovision,
		AdminUser: p.VirtualMachineProfile.OSProfile.AdminUsername, Provisioning: p.ProvisioningState,
	}
}

type instanceModel struct {
	InstanceID string `json:"instanceId"`
	Name       string `json:"name"`
	Properties struct {
		LatestModelApplied   bool   `json:"latestModelApplied"`
		ProvisioningState    string `json:"provisioningState"`
		PrivateIPAddress     string `json:"privateIpAddress"`
		PlatformFaultDomain  int    `json:"platformFaultDomain"`
		PlatformUpdateDomain int    `json:"platformUpdateDomain"`
		PowerState           string `json:"powerState"`
		HealthState          string `json:"healthState"`
		OSProfile            struct {
			ComputerName string `json:"computerName"`
		} `json:"osProfile"`
	} `json:"properties"`
}

func (v instanceModel) view() Instance {
	p := v.Properties
	return Instance{
		ID: v.InstanceID, Name: v.Name, ComputerName: p.OSProfile.ComputerName, PrivateIP: p.PrivateIPAddress,
		FD: p.PlatformFaultDomain, UD: p.PlatformUpdateDomain, Power: p.PowerState, Provisioning: p.ProvisioningState,
		Health: p.HealthState, LatestModel: p.LatestModelApplied,
	}
}

type deploymentModel struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Properties struct {
		ProvisioningState string          `json:"provisioningState"`
		Error             json.RawMessage `json:"error"`
	} `json:"properties"`
}

// diff appends to the activity log what changed between two snapshots.
func diff(prev, next *Snapshot, now time.Time) []Activity {
	if prev == nil {
		return nil
	}
	var out []Activity
	add := func(kind, subject, format string, a ...any) {
		out = append(out, Activity{Time: now.UTC(), Kind: kind, Subject: subject, Text: fmt.Sprintf(format, a...)})
	}
	type inst struct{ power, prov, lb, health string }
	old := map[string]inst{}
	oldCap := map[string]int{}
	oldDep := map[string]string{}
	for _, g := range prev.Groups {
		for _, ss := range g.ScaleSets {
			oldCap[ss.ID] = ss.Capacity
			for _, in := range ss.Instances {
				old[ss.ID+"/"+in.ID] = inst{in.Power, in.Provisioning, in.LB, in.Health}
			}
		}
		for _, d := range g.Deployments {
			oldDep[g.Name+"/"+d.Name] = d.State
		}
	}
	seen := map[string]bool{}
	for _, g := range next.Groups {
		for _, ss := range g.ScaleSets {
			if c, ok := oldCap[ss.ID]; !ok {
				add("scale", ss.Name, "scale set created with capacity %d", ss.Capacity)
			} else if c != ss.Capacity {
				add("scale", ss.Name, "capacity %d → %d", c, ss.Capacity)
			}
			for _, in := range ss.Instances {
				k := ss.ID + "/" + in.ID
				seen[k] = true
				o, ok := old[k]
				subj := ss.Name + "_" + in.ID
				if !ok {
					add("instance", subj, "instance added (%s)", in.Provisioning)
					continue
				}
				if o.prov != in.Provisioning {
					add("instance", subj, "provisioning %s → %s", o.prov, in.Provisioning)
				}
				if o.power != in.Power {
					add("instance", subj, "power %s → %s", o.power, in.Power)
				}
				if o.health != in.Health && in.Health != "" {
					add("repair", subj, "health %s → %s", orDash(o.health), in.Health)
				}
				if o.lb != in.LB && in.LB != "" {
					add("probe", subj, "probe %s → %s", orDash(o.lb), in.LB)
				}
			}
		}
		for _, d := range g.Deployments {
			if o := oldDep[g.Name+"/"+d.Name]; o != d.State {
				add("deployment", d.Name, "deployment %s → %s", orDash(o), d.State)
			}
		}
	}
	for k := range old {
		if !seen[k] {
			i := strings.LastIndex(k, "/")
			set := k[:i]
			add("instance", set[strings.LastIndex(set, "/")+1:]+"_"+k[i+1:], "instance removed")
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Subject < out[j].Subject })
	return out
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
