package main

import (
	"context"
	"strings"
	"testing"

	"github.com/vmss-emulator/vmss/api/apitest"

	"github.com/vmss-emulator/vmss/client"
)

func run(c *client.Client, args ...string) error {
	root := newRoot()
	root.SetArgs(append(args, "--socket", c.Socket, "-o", "none"))
	return root.ExecuteContext(context.Background())
}

func TestLBChildCommandsFromTheTable(t *testing.T) {
	c, _ := apitest.Start(t)
	must := func(args ...string) {
		t.Helper()
		if err := run(c, args...); err != nil {
			t.Fatalf("%s: %v", strings.Join(args, " "), err)
		}
	}
	must("network", "lb", "create", "-n", "lb1")
	must("network", "lb", "probe", "create", "--lb-name", "lb1", "-n", "p80", "--protocol", "Http", "--port", "80", "--path", "/healthz")
	// The frontend and the pool default to the only ones.
	must("network", "lb", "rule", "create", "--lb-name", "lb1", "-n", "r80", "--frontend-port", "80", "--backend-port", "8080", "--probe-name", "p80")
	must("network", "lb", "rule", "show", "--lb-name", "lb1", "-n", "r80")
	must("network", "lb", "rule", "list", "--lb-name", "lb1")
	must("network", "lb", "address-pool", "create", "--lb-name", "lb1", "-n", "pool2")
	if err := run(c, "network", "lb", "rule", "create", "--lb-name", "lb1", "-n", "r81", "--frontend-port", "81", "--backend-port", "81"); err == nil || !strings.Contains(err.Error(), "--backend-pool-name") {
		t.Errorf("rule with two pools and no --backend-pool-name: %v", err)
	}
	must("network", "public-ip", "create", "-n", "pip2")
	must("network", "lb", "frontend-ip", "create", "--lb-name", "lb1", "-n", "fe2", "--public-ip-address", "pip2")
	must("network", "lb", "inbound-nat-rule", "create", "--lb-name", "lb1", "-n", "ssh", "--frontend-ip-name", "fe2", "--frontend-port", "60022")
	// Pools and rules do not mix on one load balancer (Azure's rule).
	must("network", "lb", "create", "-n", "lb2")
	must("network", "lb", "inbound-nat-pool", "create", "--lb-name", "lb2", "-n", "np")
	must("network", "lb", "inbound-nat-pool", "show", "--lb-name", "lb2", "-n", "np")

	var lb struct {
		Properties struct {
			FrontendIPConfigurations, BackendAddressPools, InboundNatRules, InboundNatPools []struct{ Name string }
			LoadBalancingRules                                                              []struct {
				Name       string
				Properties struct {
					FrontendPort, BackendPort int
					Probe                     struct{ ID string }
				}
			}
			Probes []struct {
				Properties struct{ RequestPath string }
			}
		}
	}
	id := c.ResourceID("default", "Microsoft.Network/loadBalancers", "lb1")
	if _, err := c.Do(context.Background(), "GET", id, nil, &lb); err != nil {
		t.Fatal(err)
	}
	p := lb.Properties
	if len(p.FrontendIPConfigurations) != 2 || len(p.BackendAddressPools) != 2 || len(p.InboundNatRules) != 1 ||
		len(p.LoadBalancingRules) != 1 || p.LoadBalancingRules[0].Properties.BackendPort != 8080 || !strings.HasSuffix(p.LoadBalancingRules[0].Properties.Probe.ID, "/probes/p80") ||
		len(p.Probes) != 1 || p.Probes[0].Properties.RequestPath != "/healthz" {
		t.Errorf("load balancer %+v", p)
	}

	must("network", "lb", "rule", "delete", "--lb-name", "lb1", "-n", "r80")
	if err := run(c, "network", "lb", "rule", "delete", "--lb-name", "lb1", "-n", "r80"); err == nil || !strings.Contains(err.Error(), "no load-balancing rule named r80") {
		t.Errorf("deleting a missing rule: %v", err)
	}
	if err := run(c, "network", "lb", "rule", "show", "--lb-name", "lb1", "-n", "r80"); err == nil {
		t.Error("show of a deleted rule succeeded")
	}
	// Every kind has the four verbs.
	root := newRoot()
	for _, k := range lbChildKinds {
		for _, verb := range []string{"create", "show", "list", "delete"} {
			if cmd, _, err := root.Find([]string{"network", "lb", k.use, verb}); err != nil || cmd.Name() != verb {
				t.Errorf("network lb %s %s: %v", k.use, verb, err)
			}
		}
	}
}
