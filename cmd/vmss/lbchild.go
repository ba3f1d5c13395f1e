package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vmss-emulator/vmss/arm"
)

// lbChildKinds are a load balancer's sub-resources as az network lb has them.
// Each row becomes a command group (vmss network lb <use>) with create, show,
// list and delete; create edits the load balancer (GET, change, PUT) as az
// does. To add a kind, add a row.
var lbChildKinds = []lbChildKind{
	{use: "frontend-ip", key: "frontendIPConfigurations", what: "frontend IP configuration",
		flags: []lbFlag{
			{name: "public-ip-address", usage: "public IP of a public frontend"},
			{name: "vnet-name", usage: "internal: VNET of --subnet"},
			{name: "subnet", usage: "internal frontend on this subnet"},
			{name: "private-ip-address", usage: "internal: static frontend address"},
		},
		build: func(g *globals, v lbValues, _ string) (map[string]any, error) {
			return frontendProps(g, v.s("public-ip-address"), v.s("vnet-name"), v.s("subnet"), v.s("private-ip-address"))
		}},
	{use: "address-pool", key: "backendAddressPools", what: "backend address pool",
		build: func(*globals, lbValues, string) (map[string]any, error) { return map[string]any{}, nil }},
	{use: "rule", key: "loadBalancingRules", what: "load-balancing rule",
		flags: []lbFlag{
			{name: "frontend-ip-name", usage: "frontend (default: the only one)", defaultsTo: "frontendIPConfigurations"},
			{name: "backend-pool-name", usage: "backend pool (default: the only one)", defaultsTo: "backendAddressPools"},
			{name: "probe-name", usage: "health probe"},
			{name: "protocol", def: "Tcp", usage: "Tcp, Udp or All"},
			{name: "frontend-port", def: 0, usage: "frontend port", required: true},
			{name: "backend-port", def: 0, usage: "backend port", required: true},
			{name: "idle-timeout", def: 4, usage: "idle timeout in minutes (4-100)"},
			{name: "enable-tcp-reset", def: false, usage: "send TCP resets on idle timeout"},
			{name: "load-distribution", def: "Default", usage: "Default (round-robin), SourceIP or SourceIPProtocol"},
		},
		build: func(_ *globals, v lbValues, lbID string) (map[string]any, error) {
			rp := map[string]any{
				"frontendIPConfiguration": map[string]any{"id": lbID + "/frontendIPConfigurations/" + v.s("frontend-ip-name")},
				"backendAddressPool":      map[string]any{"id": lbID + "/backendAddressPools/" + v.s("backend-pool-name")},
				"protocol":                v.s("protocol"), "frontendPort": v.i("frontend-port"), "backendPort": v.i("backend-port"),
				"idleTimeoutInMinutes": v.i("idle-timeout"), "enableTcpReset": v.b("enable-tcp-reset"), "loadDistribution": v.s("load-distribution"),
			}
			if p := v.s("probe-name"); p != "" {
				rp["probe"] = map[string]any{"id": lbID + "/probes/" + p}
			}
			return rp, nil
		}},
	{use: "probe", key: "probes", what: "health probe",
		flags: []lbFlag{
			{name: "protocol", def: "Tcp", usage: "Tcp, Http or Https"},
			{name: "port", def: 0, usage: "port", required: true},
			{name: "path", usage: "request path (Http, Https)"},
			{name: "interval", def: 15, usage: "seconds between probes"},
			{name: "probe-threshold", def: 0, usage: "consecutive results that change the state"},
			{name: "no-healthy-backends-behavior", usage: "AllProbedDown (default) or AllProbedUp"},
		},
		build: func(_ *globals, v lbValues, _ string) (map[string]any, error) {
			pp := map[string]any{"protocol": v.s("protocol"), "port": v.i("port"), "intervalInSeconds": v.i("interval")}
			if p := v.s("path"); p != "" {
				pp["requestPath"] = p
			}
			if n := v.i("probe-threshold"); n > 0 {
				pp["probeThreshold"] = n
			}
			if b := v.s("no-healthy-backends-behavior"); b != "" {
				pp["noHealthyBackendsBehavior"] = b
			}
			return pp, nil
		}},
	{use: "inbound-nat-pool", key: "inboundNatPools", what: "inbound NAT pool",
		flags: []lbFlag{
			{name: "frontend-ip-name", usage: "frontend (default: the only one)", defaultsTo: "frontendIPConfigurations"},
			{name: "protocol", def: "Tcp", usage: "Tcp or Udp"},
			{name: "frontend-port-range-start", def: 50000, usage: "first frontend port"},
			{name: "frontend-port-range-end", def: 50119, usage: "last frontend port"},
			{name: "backend-port", def: 22, usage: "backend port"},
		},
		build: func(_ *globals, v lbValues, lbID string) (map[string]any, error) {
			return map[string]any{
				"frontendIPConfiguration": map[string]any{"id": lbID + "/frontendIPConfigurations/" + v.s("frontend-ip-name")},
				"protocol":                v.s("protocol"), "frontendPortRangeStart": v.i("frontend-port-range-start"),
				"frontendPortRangeEnd": v.i("frontend-port-range-end"), "backendPort": v.i("backend-port")}, nil
		}},
	{use: "inbound-nat-rule", key: "inboundNatRules", what: "inbound NAT rule",
		flags: []lbFlag{
			{name: "frontend-ip-name", usage: "frontend (default: the only one)", defaultsTo: "frontendIPConfigurations"},
			{name: "protocol", def: "Tcp", usage: "Tcp or Udp"},
			{name: "frontend-port", def: 0, usage: "frontend port", required: true},
			{name: "backend-port", def: 22, usage: "backend port"},
			{name: "nic-name", usage: "NIC to bind the rule to (for example jumpboxVMNic)"},
			{name: "ip-config-name", usage: "ip configuration of --nic-name (default: the first)"},
		},
		build: func(_ *globals, v lbValues, lbID string) (map[string]any, error) {
			return map[string]any{
				"frontendIPConfiguration": map[string]any{"id": lbID + "/frontendIPConfigurations/" + v.s("frontend-ip-name")},
				"protocol":                v.s("protocol"), "frontendPort": v.i("frontend-port"), "backendPort": v.i("backend-port")}, nil
		},
		after: func(ctx context.Context, g *globals, v lbValues, id string) error {
			if nic := v.s("nic-name"); nic != "" {
				return bindNATRule(ctx, g, nic, v.s("ip-config-name"), id)
			}
			return nil
		}},
}

// lbChildKind is one kind of load balancer sub-resource.
type lbChildKind struct {
	use   string   // command name: rule
	key   string   // list in the load balancer's properties: loadBalancingRules
	what  string   // for messages: load-balancing rule
	flags []lbFlag // create's flags besides --lb-name and --name
	// build returns the sub-resource's properties; lbID is the load balancer's id.
	build func(g *globals, v lbValues, lbID string) (map[string]any, error)
	// after runs once the load balancer is put, with the sub-resource's id (nil: nothing).
	after func(ctx context.Context, g *globals, v lbValues, id string) error
}

// lbFlag is one flag of a create command.
type lbFlag struct {
	name, usage string
	def         any  // string (the zero value when nil), int or bool
	required    bool // the flag must be given
	// defaultsTo names a list of the load balancer (frontendIPConfigurations)
	// whose only element is the value when the flag is not given.
	defaultsTo string
}

// lbValues are the values of a create command's flags by name.
type lbValues map[string]any

func (v lbValues) s(name string) string { s, _ := v[name].(string); return s }
func (v lbValues) i(name string) int    { n, _ := v[name].(int); return n }
func (v lbValues) b(name string) bool   { b, _ := v[name].(bool); return b }

// lbChildCmds are the command groups of lbChildKinds.
func lbChildCmds(g *globals) []*cobra.Command {
	var out []*cobra.Command
	for _, k := range lbChildKinds {
		c := &cobra.Command{Use: k.use, Short: "Manage a load balancer's " + k.what + "s"}
		c.AddCommand(k.createCmd(g), k.showCmd(g), k.listCmd(g), k.deleteCmd(g))
		out = append(out, c)
	}
	return out
}

// lbChildCmd is a command on a load balancer's sub-resources with --lb-name
// and, when named, --name.
func (k lbChildKind) cmd(use, short string, named bool, run func(cmd *cobra.Command, lb, name string) error) *cobra.Command {
	var lb, name string
	c := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd, lb, name) }}
	c.Flags().StringVar(&lb, "lb-name", "", "load balancer (required)")
	must(c.MarkFlagRequired("lb-name"))
	if named {
		c.Flags().StringVarP(&name, "name", "n", "", k.what+" name (required)")
		must(c.MarkFlagRequired("name"))
	}
	return c
}

func (k lbChildKind) createCmd(g *globals) *cobra.Command {
	vals := map[string]any{}
	c := k.cmd("create", "Add or replace a "+k.what+" (az network lb "+k.use+" create)", true, func(cmd *cobra.Command, lb, name string) error {
		v := lbValues{}
		for n, p := range vals {
			switch p := p.(type) {
			case *string:
				v[n] = *p
			case *int:
				v[n] = *p
			case *bool:
				v[n] = *p
			}
		}
		ctx := ctxOf(cmd)
		var id string
		out, err := editLB(ctx, g, lb, func(props map[string]any, lbID string) error {
			for _, f := range k.flags {
				if f.defaultsTo != "" && v.s(f.name) == "" {
					only, err := onlyChild(props, f.defaultsTo, lb, "--"+f.name)
					if err != nil {
						return err
					}
					v[f.name] = only
				}
			}
			p, err := k.build(g, v, lbID)
			if err != nil {
				return err
			}
			id = lbID + "/" + k.key + "/" + name
			upsert(props, k.key, name, map[string]any{"name": name, "properties": p})
			return nil
		})
		if err != nil {
			return err
		}
		if k.after != nil {
			if err := k.after(ctx, g, v, id); err != nil {
				return err
			}
		}
		return g.print(os.Stdout, out, nil)
	})
	for _, f := range k.flags {
		switch d := f.def.(type) {
		case int:
			p := new(int)
			c.Flags().IntVar(p, f.name, d, f.usage)
			vals[f.name] = p
		case bool:
			p := new(bool)
			c.Flags().BoolVar(p, f.name, d, f.usage)
			vals[f.name] = p
		default:
			p := new(string)
			s, _ := f.def.(string) // nil means ""
			c.Flags().StringVar(p, f.name, s, f.usage)
			vals[f.name] = p
		}
		if f.required {
			must(c.MarkFlagRequired(f.name))
		}
	}
	return c
}

func (k lbChildKind) showCmd(g *globals) *cobra.Command {
	return k.cmd("show", "Show a "+k.what, true, func(cmd *cobra.Command, lb, name string) error {
		v, err := g.get(ctxOf(cmd), g.rid(arm.TypeLoadBalancer, lb)+"/"+k.key+"/"+name)
		if err != nil {
			return err
		}
		return g.print(os.Stdout, v, nil)
	})
}

func (k lbChildKind) listCmd(g *globals) *cobra.Command {
	return k.cmd("list", "List the "+k.what+"s of a load balancer", false, func(cmd *cobra.Command, lb, _ string) error {
		v, err := g.get(ctxOf(cmd), g.rid(arm.TypeLoadBalancer, lb))
		if err != nil {
			return err
		}
		list, _ := dig(v, "properties."+k.key).([]any)
		if list == nil {
			list = []any{}
		}
		return g.print(os.Stdout, list, nil)
	})
}

func (k lbChildKind) deleteCmd(g *globals) *cobra.Command {
	return k.cmd("delete", "Remove a "+k.what, true, func(cmd *cobra.Command, lb, name string) error {
		_, err := editLB(ctxOf(cmd), g, lb, func(props map[string]any, _ string) error {
			if !remove(props, k.key, name) {
				return fmt.Errorf("load balancer %s has no %s named %s", lb, k.what, name)
			}
			return nil
		})
		return err
	})
}

// onlyChild is the name of the load balancer's only element of props[key];
// with none or several it asks for the flag.
func onlyChild(props map[string]any, key, lb, flag string) (string, error) {
	list, _ := props[key].([]any)
	if len(list) != 1 {
		return "", fmt.Errorf("load balancer %s has %d %s: name one with %s", lb, len(list), key, flag)
	}
	return str(dig(list[0], "name")), nil
}

// upsert replaces or appends the element named name in props[key].
func upsert(props map[string]any, key, name string, v map[string]any) {
	list, _ := props[key].([]any)
	for i, e := range list {
		if strings.EqualFold(str(dig(e, "name")), name) {
			list[i] = v
			props[key] = list
			return
		}
	}
	props[key] = append(list, v)
}

// remove deletes the element named name from props[key]; false when there is none.
func remove(props map[string]any, key, name string) bool {
	list, _ := props[key].([]any)
	for i, e := range list {
		if strings.EqualFold(str(dig(e, "name")), name) {
			props[key] = append(list[:i], list[i+1:]...)
			return true
		}
	}
	return false
}

// frontendProps are the properties of a frontend: internal on vnet/subnet
// (with a static address when given), or public on the public IP pip.
func frontendProps(g *globals, pip, vnet, subnet, privIP string) (map[string]any, error) {
	if subnet != "" {
		p := map[string]any{"subnet": map[string]any{"id": g.rid(arm.TypeSubnet, vnet, subnet)}}
		if privIP != "" {
			p["privateIPAddress"] = privIP
			p["privateIPAllocationMethod"] = "Static"
		}
		return p, nil
	}
	if pip == "" {
		return nil, fmt.Errorf("a frontend needs --public-ip-address (public) or --vnet-name and --subnet (internal)")
	}
	return map[string]any{"publicIPAddress": map[string]any{"id": g.rid(arm.TypePublicIP, pip)}}, nil
}

// bindNATRule adds the inbound NAT rule ruleID to a NIC's ip configuration
// (the named one, or the first).
func bindNATRule(ctx context.Context, g *globals, nicName, ipconfig, ruleID string) error {
	path := g.rid(arm.TypeNIC, nicName)
	nic, err := g.get(ctx, path)
	if err != nil {
		return err
	}
	ics, _ := dig(nic, "properties.ipConfigurations").([]any)
	for i, ic := range ics {
		if ipconfig != "" && !strings.EqualFold(str(dig(ic, "name")), ipconfig) || ipconfig == "" && i > 0 {
			continue
		}
		p, ok := dig(ic, "properties").(map[string]any)
		if !ok {
			return fmt.Errorf("NIC %s: ip configuration %s has no properties", nicName, str(dig(ic, "name")))
		}
		rules, _ := p["loadBalancerInboundNatRules"].([]any)
		p["loadBalancerInboundNatRules"] = append(rules, map[string]any{"id": ruleID})
	}
	if props, ok := nic["properties"].(map[string]any); ok {
		delete(props, "virtualMachine")
	}
	return g.send(ctx, http.MethodPut, path, nic, nil, false, nil)
}

// must panics on an error that means a mistake in the command definitions
// (marking a flag that does not exist required).
func must(err error) {
	if err != nil {
		panic(err)
	}
}
