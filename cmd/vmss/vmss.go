package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vmss-emulator/vmss/arm"
)

// createOpts are the az vmss create options the emulator supports.
type createOpts struct {
	name, vnet, subnet, vnetPrefix, subnetPrefix string
	count                                        int
	adminUser, adminPassword, authType           string
	sshKeys                                      []string
	genKeys, disableOverprovision                bool
	upgradeMode, lb, pip, pipAddress, bePool     string
	natPool, computerPrefix, scaleInPolicy       string
	backendPort, faultDomains                    int
	singlePlacementGroup                         string
	customData, customScript                     string
	lbRulePort                                   int
	probePath                                    string
	noWait                                       bool
}

// addScaleSetCommands adds the az vmss verbs to root.
func addScaleSetCommands(root *cobra.Command, g *globals) {
	root.AddCommand(scaleSetCreateCmd(g), scaleSetShowCmd(g), scaleSetListCmd(g), scaleSetDeleteCmd(g), scaleCmd(g),
		scaleSetUpdateCmd(g), listInstancesCmd(g), instanceViewCmd(g), connectionInfoCmd(g), publicIPsCmd(g))
	for _, a := range []struct{ verb, action, short string }{
		{"delete-instances", "delete", "Delete instances by id; never blocked by scale-in protection"},
		{"start", "start", "Start instances"},
		{"stop", "powerOff", "Power off instances (processes stop; address and name are kept)"},
		{"deallocate", "deallocate", "Deallocate instances"},
		{"restart", "restart", "Restart instances"},
		{"reimage", "reimage", "Rebuild instances from the model, keeping id, name and address"},
		{"update-instances", "manualUpgrade", "Apply the latest model to instances"},
	} {
		root.AddCommand(instanceAction(g, a.verb, a.action, a.short))
	}

	for _, c := range root.Commands() {
		switch c.Name() {
		case "show", "delete", "scale", "update", "list-instances", "get-instance-view", "delete-instances", "start", "stop",
			"deallocate", "restart", "reimage", "update-instances", "list-instance-connection-info", "list-instance-public-ips":
			c.Flags().StringP("name", "n", "", "scale set name (required)")
			must(c.MarkFlagRequired("name"))
		}
	}
}

// scaleSetCreateCmd is vmss create.
func scaleSetCreateCmd(g *globals) *cobra.Command {
	var o createOpts
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a scale set with its VNET, load balancer and NAT pool (az vmss create)",
		Example: `  sudo vmss create -n web --instance-count 3 --admin-username azureuser --generate-ssh-keys
  sudo vmss create -n web --admin-password 'S3cret!pass' --authentication-type password`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ss, err := createScaleSet(ctxOf(cmd), g, o)
			if err != nil {
				return err
			}
			return g.print(os.Stdout, ss, scaleSetColumns)
		},
	}
	f := create.Flags()
	f.StringVarP(&o.name, "name", "n", "", "scale set name (required)")
	f.IntVar(&o.count, "instance-count", 2, "number of instances")
	f.StringVar(&o.vnet, "vnet-name", "", "VNET to use or create (default {name}VNET)")
	f.StringVar(&o.subnet, "subnet", "", "subnet name (default {name}Subnet)")
	f.StringVar(&o.vnetPrefix, "vnet-address-prefix", "10.0.0.0/16", "address space of a new VNET")
	f.StringVar(&o.subnetPrefix, "subnet-address-prefix", "10.0.0.0/24", "prefix of a new subnet")
	f.StringVar(&o.adminUser, "admin-username", "azureuser", "admin account in every instance")
	f.StringVar(&o.adminPassword, "admin-password", "", "admin password (password authentication)")
	f.StringVar(&o.authType, "authentication-type", "", "ssh, password or all (default ssh, or password when --admin-password is given)")
	f.StringSliceVar(&o.sshKeys, "ssh-key-values", nil, "SSH public keys or key files")
	f.BoolVar(&o.genKeys, "generate-ssh-keys", false, "create ~/.ssh/id_rsa when no key exists")
	f.BoolVar(&o.disableOverprovision, "disable-overprovision", false, "create exactly the asked-for instances")
	f.StringVar(&o.upgradeMode, "upgrade-policy-mode", "Manual", "Manual, Automatic or Rolling")
	f.StringVar(&o.lb, "lb", "", "load balancer to create (default {name}LB; \"\" with --lb-sku none is not needed: use --lb none)")
	f.StringVar(&o.pip, "public-ip-address", "", "public IP of the load balancer (default {name}LBPublicIP)")
	f.StringVar(&o.pipAddress, "public-ip-address-pin", "", "emulator: host address to give the public IP (e.g. 0.0.0.0 in a Vagrant VM)")
	f.StringVar(&o.bePool, "backend-pool-name", "", "backend pool name (default {name}LBBEPool)")
	f.StringVar(&o.natPool, "nat-pool-name", "", "inbound NAT pool name (default {name}LBNatPool)")
	f.IntVar(&o.backendPort, "backend-port", 22, "backend port of the NAT pool")
	f.StringVar(&o.computerPrefix, "computer-name-prefix", "", "computer name prefix (default: the name, up to 9 characters)")
	f.IntVar(&o.faultDomains, "platform-fault-domain-count", 5, "fault domains (1-5)")
	f.StringVar(&o.singlePlacementGroup, "single-placement-group", "", "true or false (false allows up to 1000 instances)")
	f.StringVar(&o.scaleInPolicy, "scale-in-policy", "", "Default, NewestVM or OldestVM")
	f.StringVar(&o.customData, "custom-data", "", "file whose content becomes customData")
	f.StringVar(&o.customScript, "custom-script", "", "emulator: command run as root in each instance (CustomScript extension)")
	f.IntVar(&o.lbRulePort, "lb-rule-port", 0, "emulator: also add a load-balancing rule for this port (frontend = backend) with a probe")
	f.StringVar(&o.probePath, "probe-path", "/", "request path of the HTTP probe of --lb-rule-port")
	f.BoolVar(&o.noWait, "no-wait", false, "do not wait for the instances")
	must(create.MarkFlagRequired("name"))
	return create
}

// scaleSetShowCmd is vmss show.
func scaleSetShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "show", Short: "Show a scale set (az vmss show)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := g.get(ctxOf(cmd), g.rid(arm.TypeScaleSet, nameFlag(cmd)))
			if err != nil {
				return err
			}
			return g.print(os.Stdout, v, scaleSetColumns)
		},
	}
}

// scaleSetListCmd is vmss list.
func scaleSetListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List scale sets (az vmss list; all groups unless -g is given)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := "/subscriptions/" + g.client().Subscription + "/providers/Microsoft.Compute/virtualMachineScaleSets"
			if cmd.Flag("resource-group").Changed {
				path = "/subscriptions/" + g.client().Subscription + "/resourceGroups/" + g.group + "/providers/Microsoft.Compute/virtualMachineScaleSets"
			}
			v, err := g.list(ctxOf(cmd), path)
			if err != nil {
				return err
			}
			return g.print(os.Stdout, v, scaleSetColumns)
		},
	}
}

// scaleSetDeleteCmd is vmss delete.
func scaleSetDeleteCmd(g *globals) *cobra.Command {
	var noWait bool
	del := &cobra.Command{
		Use: "delete", Short: "Delete a scale set and its instances (az vmss delete)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.send(ctxOf(cmd), http.MethodDelete, g.rid(arm.TypeScaleSet, nameFlag(cmd)), nil, nil, noWait, nil)
		},
	}
	del.Flags().BoolVar(&noWait, "no-wait", false, "do not wait")
	return del
}

// scaleCmd is vmss scale.
func scaleCmd(g *globals) *cobra.Command {
	var capacity int64
	var noWait bool
	scale := &cobra.Command{
		Use: "scale", Short: "Change the number of instances (az vmss scale)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flag("new-capacity").Changed {
				return fmt.Errorf("--new-capacity is required")
			}
			path := g.rid(arm.TypeScaleSet, nameFlag(cmd))
			var out map[string]any
			body := map[string]any{"sku": map[string]any{"capacity": capacity}}
			if err := g.send(ctxOf(cmd), http.MethodPatch, path, body, &out, noWait, g.instanceProgress(ctxOf(cmd), path)); err != nil {
				return err
			}
			return g.print(os.Stdout, out, scaleSetColumns)
		},
	}
	scale.Flags().Int64Var(&capacity, "new-capacity", 0, "number of instances")
	scale.Flags().BoolVar(&noWait, "no-wait", false, "do not wait")
	return scale
}

// scaleSetUpdateCmd is vmss update.
func scaleSetUpdateCmd(g *globals) *cobra.Command {
	var sets []string
	var noWait bool
	var instID, protectIn, protectActions string
	update := &cobra.Command{
		Use:   "update",
		Short: "Update a scale set (--set path=value) or an instance's protection (az vmss update)",
		Example: `  sudo vmss update -n web --set properties.upgradePolicy.mode=Automatic
  sudo vmss update -n web --instance-id 1 --protect-from-scale-in true`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := g.rid(arm.TypeScaleSet, nameFlag(cmd))
			if instID != "" {
				pp := map[string]any{}
				if protectIn != "" {
					pp["protectFromScaleIn"] = protectIn
				}
				if protectActions != "" {
					pp["protectFromScaleSetActions"] = protectActions
				}
				var out map[string]any
				if _, err := g.client().Do(ctxOf(cmd), http.MethodPut, path+"/virtualMachines/"+instID,
					map[string]any{"properties": map[string]any{"protectionPolicy": pp}}, &out); err != nil {
					return err
				}
				return g.print(os.Stdout, out, instanceColumns)
			}
			patch, err := parseSet(sets)
			if err != nil {
				return err
			}
			var out map[string]any
			if err := g.send(ctxOf(cmd), http.MethodPatch, path, patch, &out, noWait, nil); err != nil {
				return err
			}
			return g.print(os.Stdout, out, scaleSetColumns)
		},
	}
	update.Flags().StringArrayVar(&sets, "set", nil, "property path=value (JSON values allowed)")
	update.Flags().StringVar(&instID, "instance-id", "", "update this instance's protection policy")
	update.Flags().StringVar(&protectIn, "protect-from-scale-in", "", "true or false")
	update.Flags().StringVar(&protectActions, "protect-from-scale-set-actions", "", "true or false")
	update.Flags().BoolVar(&noWait, "no-wait", false, "do not wait")
	return update
}

// listInstancesCmd is vmss list-instances.
func listInstancesCmd(g *globals) *cobra.Command {
	var expand bool
	li := &cobra.Command{
		Use: "list-instances", Short: "List a scale set's instances (az vmss list-instances)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := g.rid(arm.TypeScaleSet, nameFlag(cmd)) + "/virtualMachines"
			if expand {
				path += "?$expand=instanceView"
			}
			v, err := g.list(ctxOf(cmd), path)
			if err != nil {
				return err
			}
			return g.print(os.Stdout, v, instanceColumns)
		},
	}
	li.Flags().BoolVar(&expand, "expand-instance-view", false, "include each instance view")
	return li
}

// instanceViewCmd is vmss get-instance-view.
func instanceViewCmd(g *globals) *cobra.Command {
	var viewID string
	giv := &cobra.Command{
		Use: "get-instance-view", Short: "Show the instance view of a scale set or one instance (az vmss get-instance-view)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := g.rid(arm.TypeScaleSet, nameFlag(cmd))
			if viewID != "" {
				path += "/virtualMachines/" + viewID
			}
			v, err := g.get(ctxOf(cmd), path+"/instanceView")
			if err != nil {
				return err
			}
			return g.print(os.Stdout, v, nil)
		},
	}
	giv.Flags().StringVar(&viewID, "instance-id", "", "instance id")
	return giv
}

// connectionInfoCmd is vmss list-instance-connection-info.
func connectionInfoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "list-instance-connection-info", Short: "Show the address:port that reaches each instance's SSH (az vmss list-instance-connection-info)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, err := connectionInfo(ctxOf(cmd), g, nameFlag(cmd))
			if err != nil {
				return err
			}
			return g.print(os.Stdout, info, nil)
		},
	}
}

// publicIPsCmd is vmss list-instance-public-ips.
func publicIPsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "list-instance-public-ips", Short: "List the instances' own public IPs (az vmss list-instance-public-ips)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := g.list(ctxOf(cmd), g.rid(arm.TypeScaleSet, nameFlag(cmd))+"/publicIPAddresses")
			if err != nil {
				return err
			}
			return g.print(os.Stdout, v, pipColumns)
		},
	}
}

func nameFlag(cmd *cobra.Command) string {
	v, _ := cmd.Flags().GetString("name") // every command that calls it defines --name
	return v
}

func instanceAction(g *globals, verb, action, short string) *cobra.Command {
	var ids []string
	var noWait bool
	c := &cobra.Command{
		Use:   verb + " -n NAME [--instance-ids ID [ID ...]]",
		Short: short + " (az vmss " + verb + ")",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			all := append(append([]string{}, ids...), args...)
			if verb == "delete-instances" && len(all) == 0 {
				return fmt.Errorf("--instance-ids is required, for example --instance-ids 1 3")
			}
			var body any
			if len(all) > 0 && !(len(all) == 1 && all[0] == "*") {
				body = map[string]any{"instanceIds": all}
			}
			path := g.rid(arm.TypeScaleSet, nameFlag(cmd)) + "/" + action
			return g.send(ctxOf(cmd), http.MethodPost, path, body, nil, noWait, nil)
		},
	}
	c.Flags().StringSliceVar(&ids, "instance-ids", nil, "instance ids (space or comma separated; * for all)")
	c.Flags().BoolVar(&noWait, "no-wait", false, "do not wait")
	return c
}

var scaleSetColumns = []column{
	col("Name", "name"), col("ResourceGroup", "resourceGroup"), col("Location", "location"),
	col("Capacity", "sku.capacity"), col("Overprovision", "overprovision"), col("UpgradePolicy", "upgradePolicy.mode"),
	col("ProvisioningState", "provisioningState"),
}

var instanceColumns = []column{
	col("InstanceId", "instanceId"), col("Name", "name"), col("ComputerName", "osProfile.computerName"),
	col("PrivateIp", "privateIpAddress"), col("FaultDomain", "platformFaultDomain"), col("UpdateDomain", "platformUpdateDomain"),
	col("PowerState", "powerState"), col("ProvisioningState", "provisioningState"), col("LatestModel", "latestModelApplied"),
	col("Netns", "netns"),
}

// connectionInfo maps "instance N" to ADDR:PORT from the load balancers' NAT rules.
func connectionInfo(ctx context.Context, g *globals, name string) (map[string]string, error) {
	setPath := g.rid(arm.TypeScaleSet, name)
	ss, err := g.get(ctx, setPath)
	if err != nil {
		return nil, err
	}
	lbs := map[string]bool{}
	hasPool := false
	ncs, _ := dig(ss, "properties.virtualMachineProfile.networkProfile.networkInterfaceConfigurations").([]any)
	for _, nc := range ncs {
		ics, _ := dig(nc, "properties.ipConfigurations").([]any)
		for _, ic := range ics {
			pools, _ := dig(ic, "properties.loadBalancerInboundNatPools").([]any)
			bps, _ := dig(ic, "properties.loadBalancerBackendAddressPools").([]any)
			hasPool = hasPool || len(pools) > 0
			for _, p := range append(pools, bps...) {
				if id, err := arm.ParseID(str(dig(p, "id"))); err == nil {
					lbs[id.Parent().String()] = true
				}
			}
		}
	}
	noNAT := fmt.Errorf("scale set %s has no inbound NAT pool or NAT rule on a backend pool, so its instances have no public SSH port; use a jumpbox (vmss vm create ... --public-ip-address) or add a NAT pool or rule", name)
	if len(lbs) == 0 {
		return nil, noNAT
	}
	out := map[string]string{}
	prefix := strings.ToLower(setPath) + "/virtualmachines/"
	for lbID := range lbs {
		lb, err := g.get(ctx, lbID)
		if err != nil {
			return nil, err
		}
		addrs := map[string]string{}
		fes, _ := dig(lb, "properties.frontendIPConfigurations").([]any)
		for _, fe := range fes {
			if pipID := str(dig(fe, "properties.publicIPAddress.id")); pipID != "" {
				pip, err := g.get(ctx, pipID)
				if err != nil {
					return nil, err
				}
				addrs[strings.ToLower(str(dig(fe, "id")))] = str(dig(pip, "properties.ipAddress"))
			} else {
				addrs[strings.ToLower(str(dig(fe, "id")))] = str(dig(fe, "properties.privateIPAddress"))
			}
		}
		rules, _ := dig(lb, "properties.inboundNatRules").([]any)
		for _, r := range rules {
			be := strings.ToLower(str(dig(r, "properties.backendIPConfiguration.id")))
			if !strings.HasPrefix(be, prefix) {
				continue
			}
			inst := strings.SplitN(strings.TrimPrefix(be, prefix), "/", 2)[0]
			addr := addrs[strings.ToLower(str(dig(r, "properties.frontendIPConfiguration.id")))]
			out["instance "+inst] = addr + ":" + str(dig(r, "properties.frontendPort"))
		}
		// Version 2 rules: each pool member's port mappings; the rule to
		// backend port 22 when there is one, else the first (as az).
		ruleFront := map[string]string{}
		for _, r := range rules {
			ruleFront[strings.ToLower(str(dig(r, "name")))] = addrs[strings.ToLower(str(dig(r, "properties.frontendIPConfiguration.id")))]
		}
		bps, _ := dig(lb, "properties.backendAddressPools").([]any)
		for _, bp := range bps {
			members, _ := dig(bp, "properties.loadBalancerBackendAddresses").([]any)
			for _, m := range members {
				be := strings.ToLower(str(dig(m, "properties.networkInterfaceIPConfiguration.id")))
				mps, _ := dig(m, "properties.inboundNatRulesPortMapping").([]any)
				if !strings.HasPrefix(be, prefix) || len(mps) == 0 {
					continue
				}
				pick := mps[0]
				for _, mp := range mps {
					if str(dig(mp, "backendPort")) == "22" {
						pick = mp
						break
					}
				}
				inst := strings.SplitN(strings.TrimPrefix(be, prefix), "/", 2)[0]
				out["instance "+inst] = ruleFront[strings.ToLower(str(dig(pick, "inboundNatRuleName")))] + ":" + str(dig(pick, "frontendPort"))
			}
		}
	}
	if len(out) == 0 && !hasPool {
		return nil, noNAT
	}
	return out, nil
}

// sortedKeys returns a map's keys ordered by instance number.
func sortedKeys(m map[string]string) []string {
	ks := slices.Collect(maps.Keys(m))
	sort.Slice(ks, func(i, j int) bool {
		// Keys are "instance N" (connectionInfo makes them).
		a, _ := strconv.Atoi(strings.TrimPrefix(ks[i], "instance "))
		b, _ := strconv.Atoi(strings.TrimPrefix(ks[j], "instance "))
		return a < b
	})
	return ks
}
