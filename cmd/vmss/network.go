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
	nic := simpleCRUD(g, "nic", arm.TypeNIC, "network interfaces", nil)
	nic.AddCommand(effectiveNSGCmd(g))
	n.AddCommand(vnetCmd(g), publicIPCmd(g), lbCmd(g), nic,
		simpleCRUD(g, "nsg", arm.TypeNSG, "network security groups (enforced in the instances)", nil))
	return n
}

// effectiveNSGCmd is az network nic list-effective-nsg: the NSGs that filter
// a NIC (its subnet's, its own) with their rules in evaluation order.
func effectiveNSGCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "list-effective-nsg", Short: "List the network security rules in force on a NIC (az network nic list-effective-nsg)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out map[string]any
			if _, err := g.client().Do(ctxOf(cmd), http.MethodPost, g.rid(arm.TypeNIC, nameFlag(cmd))+"/effectiveNetworkSecurityGroups", nil, &out); err != nil {
				return err
			}
			return g.print(os.Stdout, out, nil)
		}}
	c.Flags().StringP("name", "n", "", "NIC name (required)")
	must(c.MarkFlagRequired("name"))
	return c
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
		must(x.MarkFlagRequired("name"))
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
	must(create.MarkFlagRequired("name"))
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
		must(screate.MarkFlagRequired(f))
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
	must(create.MarkFlagRequired("name"))
	c.AddCommand(create)
	addCRUD(c, g, arm.TypePublicIP, "public IPs", pipColumns)
	return c
}

// ensurePublicIP creates a static public IP named name unless it exists.
func ensurePublicIP(ctx context.Context, g *globals, name string) error {
	path := g.rid(arm.TypePublicIP, name)
	ok, err := g.exists(ctx, path)
	if err != nil || ok {
		return err
	}
	return g.send(ctx, http.MethodPut, path, map[string]any{"properties": map[string]any{"publicIPAllocationMethod": "Static"}}, nil, false, nil)
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

func lbCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "lb", Short: "Manage load balancers"}
	var name, pip, feName, pool, subnet, vnet, privIP string
	create := &cobra.Command{Use: "create", Short: "Create a load balancer, public or internal (az network lb create)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := g.rid(arm.TypeLoadBalancer, name)
			if subnet == "" {
				if pip == "" {
					pip = name + "PublicIP"
				}
				if err := ensurePublicIP(ctxOf(cmd), g, pip); err != nil {
					return err
				}
			}
			fp, err := frontendProps(g, pip, vnet, subnet, privIP)
			if err != nil {
				return err
			}
			fe := map[string]any{"name": feName, "properties": fp}
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
	must(create.MarkFlagRequired("name"))
	c.AddCommand(create)
	addCRUD(c, g, arm.TypeLoadBalancer, "load balancers", nil)
	c.AddCommand(lbChildCmds(g)...)
	for _, sc := range c.Commands() {
		if sc.Name() == "show" {
			sc.RunE = func(cmd *cobra.Command, _ []string) error { return showLB(cmd, g) }
		}
	}
	return c
}

// lbShortCmd is `vmss lb show`: the load balancer with its runtime view.
func lbShortCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "lb", Short: "Load balancer status: rules, pools, per-backend probe state, connections"}
	show := &cobra.Command{Use: "show", Short: "Show a load balancer with probe state and connections", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return showLB(cmd, g) }}
	show.Flags().StringP("name", "n", "", "load balancer (required)")
	must(show.MarkFlagRequired("name"))
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
