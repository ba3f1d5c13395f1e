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

func networkCmd(g *globals) *cobra.Command {
	n := &cobra.Command{Use: "network", Short: "VNETs, subnets, public IPs, load balancers and NICs (az network)"}
	n.AddCommand(vnetCmd(g), publicIPCmd(g), lbCmd(g), simpleCRUD(g, "nic", arm.TypeNIC, "network interfaces", nil))
	return n
}

// simpleCRUD adds show, list and delete for a resource type.
func simpleCRUD(g *globals, use, typ, what string, cols []column) *cobra.Command {
	c := &cobra.Command{Use: use, Short: "Manage " + what}
	addCRUD(c, g, typ, what, cols)
	return c
}

func addCRUD(c *cobra.Command, g *globals, typ, what string, cols []column) {
	show := &cobra.Command{Use: "show", Short: "Show one of the " + what, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := g.get(ctxOf(cmd), g.rid(typ, nameFlag(cmd)))
			if err != nil {
				return err
			}
			return g.print(os.Stdout, v, cols)
		}}
	list := &cobra.Command{Use: "list", Short: "List " + what, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := g.list(ctxOf(cmd), "/subscriptions/"+g.client().Subscription+"/resourceGroups/"+g.group+"/providers/"+typ)
			if err != nil {
				return err
			}
			return g.print(os.Stdout, v, cols)
		}}
	del := &cobra.Command{Use: "delete", Short: "Delete one of the " + what, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.send(ctxOf(cmd), http.MethodDelete, g.rid(typ, nameFlag(cmd)), nil, nil, false, nil)
		}}
	for _, x := range []*cobra.Command{show, del} {
		x.Flags().StringP("name", "n", "", "name (required)")
		_ = x.MarkFlagRequired("name")
	}
	c.AddCommand(show, list, del)
}

func vnetCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "vnet", Short: "Manage virtual networks"}
	var name, prefix, subnet, subnetPrefix string
	create := &cobra.Command{Use: "create", Short: "Create a VNET (az network vnet create)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			props := map[string]any{"addressSpace": map[string]any{"addressPrefixes": strings.Split(prefix, ",")}}
			if subnet != "" {
				props["subnets"] = []any{map[string]any{"name": subnet, "properties": map[string]any{"addressPrefix": subnetPrefix}}}
			}
			var out map[string]any
			if err := g.send(ctxOf(cmd), http.MethodPut, g.rid(arm.TypeVirtualNetwork, name), map[string]any{"properties": props}, &out, false, nil); err != nil {
				return err
			}
			return g.print(os.Stdout, out, nil)
		}}
	create.Flags().StringVarP(&name, "name", "n", "", "VNET name (required)")
	create.Flags().StringVar(&prefix, "address-prefixes", "10.0.0.0/16", "address space (comma separated)")
	create.Flags().StringVar(&subnet, "subnet-name", "", "create this subnet too")
	create.Flags().StringVar(&subnetPrefix, "subnet-prefixes", "10.0.0.0/24", "prefix of --subnet-name")
	_ = create.MarkFlagRequired("name")
	c.AddCommand(create)
	addCRUD(c, g, arm.TypeVirtualNetwork, "virtual networks", nil)

	sub := &cobra.Command{Use: "subnet", Short: "Manage subnets"}
	var vnet, sname, sprefix string
	screate := &cobra.Command{Use: "create", Short: "Create a subnet (az network vnet subnet create)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out map[string]any
			if err := g.send(ctxOf(cmd), http.MethodPut, g.rid(arm.TypeSubnet, vnet, sname), map[string]any{"properties": map[string]any{"addressPrefix": sprefix}}, &out, false, nil); err != nil {
				return err
			}
			return g.print(os.Stdout, out, nil)
		}}
	screate.Flags().StringVar(&vnet, "vnet-name", "", "VNET (required)")
	screate.Flags().StringVarP(&sname, "name", "n", "", "subnet name (required)")
	screate.Flags().StringVar(&sprefix, "address-prefixes", "", "subnet prefix, e.g. 10.0.1.0/24 (required)")
	for _, f := range []string{"vnet-name", "name", "address-prefixes"} {
		_ = screate.MarkFlagRequired(f)
	}
	sdel := &cobra.Command{Use: "delete", Short: "Delete a subnet", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.send(ctxOf(cmd), http.MethodDelete, g.rid(arm.TypeSubnet, vnet, sname), nil, nil, false, nil)
		}}
	sdel.Flags().StringVar(&vnet, "vnet-name", "", "VNET (required)")
	sdel.Flags().StringVarP(&sname, "name", "n", "", "subnet name (required)")
	sub.AddCommand(screate, sdel)
	c.AddCommand(sub)
	return c
}

func publicIPCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "public-ip", Short: "Manage public IPs (host addresses, loopback by default)"}
	var name, label, pin string
	create := &cobra.Command{Use: "create", Short: "Create a public IP (az network public-ip create)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			props := map[string]any{"publicIPAllocationMethod": "Static"}
			if label != "" {
				props["dnsSettings"] = map[string]any{"domainNameLabel": label}
			}
			if pin != "" {
				props["ipAddress"] = pin
			}
			var out map[string]any
			if err := g.send(ctxOf(cmd), http.MethodPut, g.rid(arm.TypePublicIP, name), map[string]any{"properties": props}, &out, false, nil); err != nil {
				return err
			}
			return g.print(os.Stdout, out, pipColumns)
		}}
	create.Flags().StringVarP(&name, "name", "n", "", "name (required)")
	create.Flags().StringVar(&label, "dns-name", "", "DNS label")
	create.Flags().StringVar(&pin, "ip-address", "", "emulator: host address to use (e.g. 0.0.0.0 to serve on every interface)")
	_ = create.MarkFlagRequired("name")
	c.AddCommand(create)
	addCRUD(c, g, arm.TypePublicIP, "public IPs", pipColumns)
	return c
}

var pipColumns = []column{col("Name", "name"), col("IpAddress", "ipAddress"), col("Fqdn", "dnsSettings.fqdn"), col("ProvisioningState", "provisioningState")}

// editLB fetches a load balancer, lets f change it, and puts it back (az's way
// of editing rules and probes).
func editLB(ctx context.Context, g *globals, lbName string, f func(props map[string]any, lbID string) error) (map[string]any, error) {
	path := g.rid(arm.TypeLoadBalancer, lbName)
	lb, err := g.get(ctx, path)
	if err != nil {
		return nil, err
	}
	props, _ := lb["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
	}
	if err := f(props, path); err != nil {
		return nil, err
	}
	var out map[string]any
	if err := g.send(ctx, http.MethodPut, path, map[string]any{"location": lb["location"], "tags": lb["tags"], "properties": props}, &out, false, nil); err != nil {
		return nil, err
	}
	return out, nil
}

// onlyChild fills *name, when empty, with the name of the load balancer's only
// element of props[key]; with several it asks for the flag.
func onlyChild(props map[string]any, key, lb, what, flag string, name *string) error {
	if *name != "" {
		return nil
	}
	list, _ := props[key].([]any)
	if len(list) != 1 {
		return fmt.Errorf("load balancer %s has %d %s: name one with %s", lb, len(list), what, flag)
	}
	*name = str(dig(list[0], "name"))
	return nil
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

func lbCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "lb", Short: "Manage load balancers"}
	var name, pip, feName, pool, subnet, vnet, privIP string
	create := &cobra.Command{Use: "create", Short: "Create a load balancer, public or internal (az network lb create)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := g.rid(arm.TypeLoadBalancer, name)
			fe := map[string]any{"name": feName}
			switch {
			case subnet != "":
				p := map[string]any{"subnet": map[string]any{"id": g.rid(arm.TypeSubnet, vnet, subnet)}}
				if privIP != "" {
					p["privateIPAddress"] = privIP
					p["privateIPAllocationMethod"] = "Static"
				}
				fe["properties"] = p
			default:
				if pip == "" {
					pip = name + "PublicIP"
				}
				pipPath := g.rid(arm.TypePublicIP, pip)
				if ok, err := g.exists(ctxOf(cmd), pipPath); err != nil {
					return err
				} else if !ok {
					if err := g.send(ctxOf(cmd), http.MethodPut, pipPath, map[string]any{"properties": map[string]any{"publicIPAllocationMethod": "Static"}}, nil, false, nil); err != nil {
						return err
					}
				}
				fe["properties"] = map[string]any{"publicIPAddress": map[string]any{"id": pipPath}}
			}
			body := map[string]any{"properties": map[string]any{"frontendIPConfigurations": []any{fe}, "backendAddressPools": []any{map[string]any{"name": pool}}}}
			var out map[string]any
			if err := g.send(ctxOf(cmd), http.MethodPut, path, body, &out, false, nil); err != nil {
				return err
			}
			return g.print(os.Stdout, out, nil)
		}}
	f := create.Flags()
	f.StringVarP(&name, "name", "n", "", "name (required)")
	f.StringVar(&pip, "public-ip-address", "", "public IP (created when missing); ignored with --subnet")
	f.StringVar(&feName, "frontend-ip-name", "LoadBalancerFrontEnd", "frontend name")
	f.StringVar(&pool, "backend-pool-name", "bepool", "backend pool name")
	f.StringVar(&vnet, "vnet-name", "", "internal: VNET of --subnet")
	f.StringVar(&subnet, "subnet", "", "internal load balancer on this subnet")
	f.StringVar(&privIP, "private-ip-address", "", "internal: static frontend address")
	_ = create.MarkFlagRequired("name")
	c.AddCommand(create)
	addCRUD(c, g, arm.TypeLoadBalancer, "load balancers", nil)
	c.AddCommand(lbRuleCmd(g), lbProbeCmd(g), lbNatPoolCmd(g), lbNatRuleCmd(g))
	for _, sc := range c.Commands() {
		if sc.Name() == "show" {
			sc.RunE = func(cmd *cobra.Command, _ []string) error { return showLB(cmd, g) }
		}
	}
	return c
}

func lbRuleCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "rule", Short: "Load-balancing rules"}
	var lb, name, fe, pool, probe, proto, dist string
	var fport, bport, idle int
	var reset bool
	create := &cobra.Command{Use: "create", Short: "Add or replace a load-balancing rule (az network lb rule create)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := editLB(ctxOf(cmd), g, lb, func(props map[string]any, lbID string) error {
				if err := onlyChild(props, "frontendIPConfigurations", lb, "frontends", "--frontend-ip-name", &fe); err != nil {
					return err
				}
				if err := onlyChild(props, "backendAddressPools", lb, "backend pools", "--backend-pool-name", &pool); err != nil {
					return err
				}
				rp := map[string]any{
					"frontendIPConfiguration": map[string]any{"id": lbID + "/frontendIPConfigurations/" + fe},
					"backendAddressPool":      map[string]any{"id": lbID + "/backendAddressPools/" + pool},
					"protocol":                proto, "frontendPort": fport, "backendPort": bport,
					"idleTimeoutInMinutes": idle, "enableTcpReset": reset, "loadDistribution": dist,
				}
				if probe != "" {
					rp["probe"] = map[string]any{"id": lbID + "/probes/" + probe}
				}
				upsert(props, "loadBalancingRules", name, map[string]any{"name": name, "properties": rp})
				return nil
			})
			if err != nil {
				return err
			}
			return g.print(os.Stdout, out, nil)
		}}
	f := create.Flags()
	f.StringVar(&lb, "lb-name", "", "load balancer (required)")
	f.StringVarP(&name, "name", "n", "", "rule name (required)")
	f.StringVar(&fe, "frontend-ip-name", "", "frontend (default: the only one)")
	f.StringVar(&pool, "backend-pool-name", "", "backend pool (default: the only one)")
	f.StringVar(&probe, "probe-name", "", "health probe")
	f.StringVar(&proto, "protocol", "Tcp", "Tcp, Udp or All")
	f.IntVar(&fport, "frontend-port", 0, "frontend port (required)")
	f.IntVar(&bport, "backend-port", 0, "backend port (required)")
	f.IntVar(&idle, "idle-timeout", 4, "idle timeout in minutes (4-100)")
	f.BoolVar(&reset, "enable-tcp-reset", false, "send TCP resets on idle timeout")
	f.StringVar(&dist, "load-distribution", "Default", "Default (round-robin), SourceIP or SourceIPProtocol")
	for _, r := range []string{"lb-name", "name", "frontend-port", "backend-port"} {
		_ = create.MarkFlagRequired(r)
	}
	c.AddCommand(create, childDelete(g, "loadBalancingRules", "rule"), childList(g, "loadBalancingRules", "rules"))
	return c
}

func lbProbeCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "probe", Short: "Health probes"}
	var lb, name, proto, path, behavior string
	var port, interval, threshold int
	create := &cobra.Command{Use: "create", Short: "Add or replace a health probe (az network lb probe create)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := editLB(ctxOf(cmd), g, lb, func(props map[string]any, _ string) error {
				pp := map[string]any{"protocol": proto, "port": port, "intervalInSeconds": interval}
				if path != "" {
					pp["requestPath"] = path
				}
				if threshold > 0 {
					pp["probeThreshold"] = threshold
				}
				if behavior != "" {
					pp["noHealthyBackendsBehavior"] = behavior
				}
				upsert(props, "probes", name, map[string]any{"name": name, "properties": pp})
				return nil
			})
			if err != nil {
				return err
			}
			return g.print(os.Stdout, out, nil)
		}}
	f := create.Flags()
	f.StringVar(&lb, "lb-name", "", "load balancer (required)")
	f.StringVarP(&name, "name", "n", "", "probe name (required)")
	f.StringVar(&proto, "protocol", "Tcp", "Tcp, Http or Https")
	f.IntVar(&port, "port", 0, "port (required)")
	f.StringVar(&path, "path", "", "request path (Http, Https)")
	f.IntVar(&interval, "interval", 15, "seconds between probes")
	f.IntVar(&threshold, "probe-threshold", 0, "consecutive results that change the state")
	f.StringVar(&behavior, "no-healthy-backends-behavior", "", "AllProbedDown (default) or AllProbedUp")
	for _, r := range []string{"lb-name", "name", "port"} {
		_ = create.MarkFlagRequired(r)
	}
	c.AddCommand(create, childDelete(g, "probes", "probe"), childList(g, "probes", "probes"))
	return c
}

func lbNatPoolCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "inbound-nat-pool", Short: "Inbound NAT pools (scale sets)"}
	var lb, name, fe, proto string
	var start, end, bport int
	create := &cobra.Command{Use: "create", Short: "Add an inbound NAT pool (az network lb inbound-nat-pool create)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := editLB(ctxOf(cmd), g, lb, func(props map[string]any, lbID string) error {
				if err := onlyChild(props, "frontendIPConfigurations", lb, "frontends", "--frontend-ip-name", &fe); err != nil {
					return err
				}
				upsert(props, "inboundNatPools", name, map[string]any{"name": name, "properties": map[string]any{
					"frontendIPConfiguration": map[string]any{"id": lbID + "/frontendIPConfigurations/" + fe},
					"protocol":                proto, "frontendPortRangeStart": start, "frontendPortRangeEnd": end, "backendPort": bport}})
				return nil
			})
			if err != nil {
				return err
			}
			return g.print(os.Stdout, out, nil)
		}}
	f := create.Flags()
	f.StringVar(&lb, "lb-name", "", "load balancer (required)")
	f.StringVarP(&name, "name", "n", "", "pool name (required)")
	f.StringVar(&fe, "frontend-ip-name", "", "frontend (default: the only one)")
	f.StringVar(&proto, "protocol", "Tcp", "Tcp or Udp")
	f.IntVar(&start, "frontend-port-range-start", 50000, "first frontend port")
	f.IntVar(&end, "frontend-port-range-end", 50119, "last frontend port")
	f.IntVar(&bport, "backend-port", 22, "backend port")
	for _, r := range []string{"lb-name", "name"} {
		_ = create.MarkFlagRequired(r)
	}
	c.AddCommand(create, childDelete(g, "inboundNatPools", "inbound NAT pool"))
	return c
}

func lbNatRuleCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "inbound-nat-rule", Short: "Inbound NAT rules (one frontend port to one NIC)"}
	var lb, name, fe, proto, nic, ipconfig string
	var fport, bport int
	create := &cobra.Command{Use: "create", Short: "Add an inbound NAT rule and bind it to a NIC (az network lb inbound-nat-rule create)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := ctxOf(cmd)
			var ruleID string
			out, err := editLB(ctx, g, lb, func(props map[string]any, lbID string) error {
				if err := onlyChild(props, "frontendIPConfigurations", lb, "frontends", "--frontend-ip-name", &fe); err != nil {
					return err
				}
				ruleID = lbID + "/inboundNatRules/" + name
				upsert(props, "inboundNatRules", name, map[string]any{"name": name, "properties": map[string]any{
					"frontendIPConfiguration": map[string]any{"id": lbID + "/frontendIPConfigurations/" + fe},
					"protocol":                proto, "frontendPort": fport, "backendPort": bport}})
				return nil
			})
			if err != nil {
				return err
			}
			if nic != "" {
				if err := bindNATRule(ctx, g, nic, ipconfig, ruleID); err != nil {
					return err
				}
			}
			return g.print(os.Stdout, out, nil)
		}}
	f := create.Flags()
	f.StringVar(&lb, "lb-name", "", "load balancer (required)")
	f.StringVarP(&name, "name", "n", "", "rule name (required)")
	f.StringVar(&fe, "frontend-ip-name", "", "frontend (default: the only one)")
	f.StringVar(&proto, "protocol", "Tcp", "Tcp or Udp")
	f.IntVar(&fport, "frontend-port", 0, "frontend port (required)")
	f.IntVar(&bport, "backend-port", 22, "backend port")
	f.StringVar(&nic, "nic-name", "", "NIC to bind the rule to (for example jumpboxVMNic)")
	f.StringVar(&ipconfig, "ip-config-name", "", "ip configuration of --nic-name (default: the first)")
	for _, r := range []string{"lb-name", "name", "frontend-port"} {
		_ = create.MarkFlagRequired(r)
	}
	c.AddCommand(create, childDelete(g, "inboundNatRules", "inbound NAT rule"))
	return c
}

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
		p := dig(ic, "properties").(map[string]any)
		rules, _ := p["loadBalancerInboundNatRules"].([]any)
		p["loadBalancerInboundNatRules"] = append(rules, map[string]any{"id": ruleID})
	}
	delete(nic["properties"].(map[string]any), "virtualMachine")
	return g.send(ctx, http.MethodPut, path, nic, nil, false, nil)
}

func childDelete(g *globals, key, what string) *cobra.Command {
	var lb, name string
	c := &cobra.Command{Use: "delete", Short: "Remove a " + what, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := editLB(ctxOf(cmd), g, lb, func(props map[string]any, _ string) error {
				if !remove(props, key, name) {
					return fmt.Errorf("load balancer %s has no %s named %s", lb, what, name)
				}
				return nil
			})
			return err
		}}
	c.Flags().StringVar(&lb, "lb-name", "", "load balancer (required)")
	c.Flags().StringVarP(&name, "name", "n", "", "name (required)")
	_ = c.MarkFlagRequired("lb-name")
	_ = c.MarkFlagRequired("name")
	return c
}

func childList(g *globals, key, what string) *cobra.Command {
	var lb string
	c := &cobra.Command{Use: "list", Short: "List " + what, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := g.get(ctxOf(cmd), g.rid(arm.TypeLoadBalancer, lb))
			if err != nil {
				return err
			}
			return g.print(os.Stdout, dig(v, "properties."+key), nil)
		}}
	c.Flags().StringVar(&lb, "lb-name", "", "load balancer (required)")
	_ = c.MarkFlagRequired("lb-name")
	return c
}

// lbShortCmd is `vmss lb show`: the load balancer with its runtime view.
func lbShortCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "lb", Short: "Load balancer status: rules, pools, per-backend probe state, connections"}
	show := &cobra.Command{Use: "show", Short: "Show a load balancer with probe state and connections", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return showLB(cmd, g) }}
	show.Flags().StringP("name", "n", "", "load balancer (required)")
	_ = show.MarkFlagRequired("name")
	c.AddCommand(show)
	return c
}

func showLB(cmd *cobra.Command, g *globals) error {
	ctx := ctxOf(cmd)
	path := g.rid(arm.TypeLoadBalancer, nameFlag(cmd))
	lb, err := g.get(ctx, path)
	if err != nil {
		return err
	}
	health, err := g.get(ctx, path+"/health")
	if err != nil {
		return err
	}
	if g.output == "table" {
		return printLBTable(lb, health)
	}
	lb["health"] = health
	return g.print(os.Stdout, lb, nil)
}

// lastProbe is the last result of a backend's probe ("success", "HTTP 500",
// ...), "-" when the rule has no probe or it has not run yet.
func lastProbe(backend any, probe string) string {
	probes, _ := dig(backend, "probes").([]any)
	for _, p := range probes {
		if probe != "" && str(dig(p, "probe")) == probe {
			if r := str(dig(p, "lastResult")); r != "" {
				return r
			}
		}
	}
	return "-"
}

// printLBTable prints rules and, per backend, probe state and connections.
func printLBTable(lb, health map[string]any) error {
	type row = []string
	var rows []row
	rules, _ := health["rules"].([]any)
	for _, r := range rules {
		backends, _ := dig(r, "backends").([]any)
		if len(backends) == 0 {
			rows = append(rows, row{str(dig(r, "name")), str(dig(r, "frontend")), "-", "-", "-", "-", "-"})
		}
		for _, b := range backends {
			rows = append(rows, row{str(dig(r, "name")), str(dig(r, "frontend")), str(dig(b, "name")), str(dig(b, "address")),
				str(dig(b, "state")), lastProbe(b, str(dig(r, "probe"))), str(dig(b, "activeConnections"))})
		}
	}
	fmt.Printf("Load balancer %s\n\n", str(lb["name"]))
	hdr := row{"Rule", "Frontend", "Backend", "Address", "Probe", "LastProbe", "Active"}
	w := newTable(os.Stdout, hdr)
	for _, r := range rows {
		w.row(r)
	}
	if err := w.flush(); err != nil {
		return err
	}
	nat, _ := health["nat"].([]any)
	if len(nat) > 0 {
		fmt.Println()
		w := newTable(os.Stdout, row{"NAT", "Frontend", "Backend", "Active"})
		for _, n := range nat {
			w.row(row{str(dig(n, "name")), str(dig(n, "frontend")), str(dig(n, "backend")), str(dig(n, "activeConnections"))})
		}
		return w.flush()
	}
	return nil
}
