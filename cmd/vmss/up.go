package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/daemon"
)

func upCmd(g *globals) *cobra.Command {
	var f daemonFlags
	var count int
	var pin string
	c := &cobra.Command{
		Use:   "up",
		Short: "Run the daemon with a ready-made deployment; Ctrl-C removes everything",
		Long: `Run the daemon in the foreground and deploy the default: a VNET 10.0.0.0/16 with subnet
10.0.0.0/24, a 3-instance scale set 'web' whose instances run a small web app on port 80,
a load balancer with a rule 80 -> 80 and an HTTP probe on /, an inbound NAT pool
50000+ -> 22, and a jumpbox VM with its own public IP. It prints the instances and the
commands to reach them. Ctrl-C or SIGTERM removes everything it made.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needRoot(); err != nil {
				return err
			}
			o, err := f.options(g)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			d, err := daemon.Start(ctx, o)
			if err != nil {
				return err
			}
			teardown := func() error {
				fmt.Fprintln(os.Stderr, "\nRemoving everything...")
				if err := d.Teardown(context.Background()); err != nil {
					return fmt.Errorf("teardown: %w", err)
				}
				fmt.Fprintln(os.Stderr, "Done.")
				return nil
			}
			if err := deployDefault(ctx, g, count, pin); err != nil {
				terr := teardown()
				if ctx.Err() != nil {
					return terr
				}
				return fmt.Errorf("deploy the default: %w", err)
			}
			if u := d.DashboardURL(); u != "" {
				fmt.Printf("\nDashboard: %s\n", u)
			}
			fmt.Fprintln(os.Stderr, "\nThe emulator runs until Ctrl-C.")
			select {
			case <-ctx.Done():
			case err := <-d.Err():
				fmt.Fprintln(os.Stderr, "error:", err)
			}
			return teardown()
		},
	}
	f.add(c)
	c.Flags().IntVar(&count, "instance-count", 3, "instances of the default scale set")
	c.Flags().StringVar(&pin, "public-address", "", "host address for the public IPs instead of loopback ones (e.g. 0.0.0.0 inside a Vagrant VM)")
	return c
}

// deployDefault creates the demo deployment through the API and prints how to reach it.
func deployDefault(ctx context.Context, g *globals, count int, pin string) error {
	fmt.Fprintln(os.Stderr, "Deploying: VNET webVNET 10.0.0.0/16, scale set web ×", count, ", load balancer webLB, jumpbox...")
	start := time.Now()
	if _, err := createScaleSet(ctx, g, createOpts{
		name: "web", count: count, vnetPrefix: "10.0.0.0/16", subnetPrefix: "10.0.0.0/24",
		adminUser: "azureuser", genKeys: true, upgradeMode: "Manual", backendPort: 22, faultDomains: 5,
		lbRulePort: 80, probePath: "/", customScript: "exec vmss webapp --addr :80", pipAddress: pin,
	}); err != nil {
		return err
	}
	jb, err := createVM(ctx, g, vmOpts{name: "jumpbox", vnet: "webVNET", subnet: "webSubnet", pip: "jumpboxPublicIP", pipSet: true, pipPin: pin, user: "azureuser", gen: true})
	if err != nil {
		return err
	}
	vms, err := g.list(ctx, g.rid(arm.TypeScaleSet, "web")+"/virtualMachines")
	if err != nil {
		return err
	}
	info, err := connectionInfo(ctx, g, "web")
	if err != nil {
		return err
	}
	pip, err := g.get(ctx, g.rid(arm.TypePublicIP, "webLBPublicIP"))
	if err != nil {
		return err
	}
	addr := str(dig(pip, "properties.ipAddress"))
	// Like Azure, the load balancer sends no client to an instance its
	// probe has not yet found healthy: wait for that, so that the curl
	// printed below is answered the moment it can be run.
	if up, total, err := waitProbesUp(ctx, g, g.rid(arm.TypeLoadBalancer, "webLB"), probeWait); err != nil {
		if ctx.Err() != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "warning: %d of %d instances healthy after %s (%v); see: sudo vmss lb show -n webLB -o table\n", up, total, probeWait, err)
	}
	fmt.Printf("\nReady in %s.\n\n", time.Since(start).Round(10*time.Millisecond))
	t := newTable(os.Stdout, []string{"ID", "ComputerName", "PrivateIP", "FD", "UD", "Power", "Namespace", "SSH via NAT"})
	sort.Slice(vms, func(i, j int) bool { return toFloat(dig(vms[i], "instanceId")) < toFloat(dig(vms[j], "instanceId")) })
	for _, v := range vms {
		id := str(dig(v, "instanceId"))
		t.row([]string{id, str(dig(v, "properties.osProfile.computerName")), str(dig(v, "properties.privateIpAddress")),
			str(dig(v, "properties.platformFaultDomain")), str(dig(v, "properties.platformUpdateDomain")),
			str(dig(v, "properties.powerState")), str(dig(v, "properties.netns")), info["instance "+id]})
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Printf("\nLoad balancer (round-robin over healthy instances):\n  curl http://%s/\n", addr)
	fmt.Println("\nSSH into an instance through its NAT port:")
	for _, k := range sortedKeys(info) {
		host, port, _ := strings.Cut(info[k], ":")
		fmt.Printf("  ssh -p %s azureuser@%s        # %s\n", port, host, k)
	}
	jbEP := str(jb["sshEndpoint"])
	jbHost, jbPort, _ := strings.Cut(jbEP, ":")
	jump := "azureuser@" + jbHost
	if jbPort != "22" {
		jump += ":" + jbPort
	}
	fmt.Printf("\nJumpbox (private SSH into the VNET):\n  ssh -J %s azureuser@%s\n", jump, str(dig(vms[0], "properties.privateIpAddress")))
	if jbPort != "22" {
		fmt.Printf("  (port 22 of %s is taken on this host, so the jumpbox answers on %s)\n", jbHost, jbPort)
	}
	fmt.Printf("\nMore: sudo vmss list-instances -n web -o table; sudo vmss lb show -n webLB -o table\n")
	return nil
}

// probeWait is how long `vmss up` waits for the load balancer's probes to
// find every instance healthy: a few probe intervals (5 s by default).
const probeWait = 30 * time.Second

// waitProbesUp polls the health of load balancer lbID until the probes of
// every rule find every backend up; it returns the backends up and in all
// at the last look, and an error when that did not happen within d.
func waitProbesUp(ctx context.Context, g *globals, lbID string, d time.Duration) (up, total int, err error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		h, err := g.get(ctx, lbID+"/health")
		if err == nil {
			if up, total = backendsUp(h); total > 0 && up == total {
				return up, total, nil
			}
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("the probes have not found every instance healthy")
			}
			return up, total, err
		case <-tick.C:
		}
	}
}

// backendsUp counts, over the rules of a load balancer's health (GET
// .../loadBalancers/{name}/health), the backends whose state is Up, and
// all backends.
func backendsUp(health map[string]any) (up, total int) {
	rules, _ := health["rules"].([]any)
	for _, r := range rules {
		backends, _ := dig(r, "backends").([]any)
		for _, b := range backends {
			total++
			if str(dig(b, "state")) == "Up" {
				up++
			}
		}
	}
	return up, total
}
