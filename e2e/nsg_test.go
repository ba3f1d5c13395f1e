package e2e

// Network security groups enforced in the instances' namespaces: SSH
// through an inbound NAT port, HTTP through the load balancer, the load
// balancer's probes (AzureLoadBalancer) and traffic inside the VNET, each
// with the NSG changed live and a positive control.

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const nsgSub = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default/providers"

// nsgRule is a security rule body.
func nsgRule(name string, prio int, access, proto, src, dport string) map[string]any {
	return map[string]any{"name": name, "properties": map[string]any{
		"priority": prio, "direction": "Inbound", "access": access, "protocol": proto,
		"sourceAddressPrefix": src, "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRange": dport}}
}

// nsgPut puts a network security group with rules.
func nsgPut(e *Env, name string, rules ...map[string]any) {
	e.T.Helper()
	if rules == nil {
		rules = []map[string]any{}
	}
	nsgRest(e, "put", nsgSub+"/Microsoft.Network/networkSecurityGroups/"+name,
		map[string]any{"location": "eastus", "properties": map[string]any{"securityRules": rules}})
}

func nsgRest(e *Env, method, url string, body any) {
	e.T.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		e.T.Fatal(err)
	}
	f := filepath.Join(e.T.TempDir(), "body.json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		e.T.Fatal(err)
	}
	e.MustCLI("rest", "-m", method, "-u", url, "-b", "@"+f, "-o", "none")
}

// nsgAttachToSubnet sets (or, with name "", removes) the NSG of a subnet
// by putting the VNET again (the CLI prints ARM objects flattened, as az
// does).
func nsgAttachToSubnet(e *Env, vnet, subnet, name string) {
	e.T.Helper()
	url := nsgSub + "/Microsoft.Network/virtualNetworks/" + vnet
	var v struct {
		Location     string         `json:"location"`
		AddressSpace map[string]any `json:"addressSpace"`
		Subnets      []struct {
			Name          string `json:"name"`
			AddressPrefix string `json:"addressPrefix"`
			NSG           any    `json:"networkSecurityGroup"`
		} `json:"subnets"`
	}
	e.JSON(&v, "rest", "-u", url)
	var subnets []any
	for _, sn := range v.Subnets {
		props := map[string]any{"addressPrefix": sn.AddressPrefix}
		if sn.NSG != nil {
			props["networkSecurityGroup"] = sn.NSG
		}
		if strings.EqualFold(sn.Name, subnet) {
			delete(props, "networkSecurityGroup")
			if name != "" {
				props["networkSecurityGroup"] = map[string]any{"id": nsgSub + "/Microsoft.Network/networkSecurityGroups/" + name}
			}
		}
		subnets = append(subnets, map[string]any{"name": sn.Name, "properties": props})
	}
	nsgRest(e, "put", url, map[string]any{"location": v.Location, "properties": map[string]any{
		"addressSpace": v.AddressSpace, "subnets": subnets}})
}

func TestNSGEnforced(t *testing.T) {
	lbNeedPython(t)
	e := Start(t, Options{})
	c := newSSHClient(t)
	url := lbCreate(e, "web", 2, lbAppCommand(80), "--ssh-key-values", c.Pub)
	lbWaitAllUp(e, "webLB", "", "web", 30*time.Second)
	insts := e.Instances("web")
	eps := sshConnInfo(e, "web")
	ep0 := eps[insts[0].InstanceID]
	peer := insts[1].PrivateIPAddress
	sshOK := func() bool { return c.ssh(ep0, "true").Code == 0 }
	httpOK := func() bool { _, err := lbHit(url, netip.Addr{}); return err == nil }
	// inside: instance 0 connects to port 22 of instance 1 across the subnet.
	inside := func() bool {
		out := e.runIn("web", insts[0].InstanceID, "timeout 3 bash -c '</dev/tcp/"+peer+"/22' && echo open || echo closed")
		return strings.Contains(out, "open")
	}
	wait := func(what string, f func() bool, want bool) {
		t.Helper()
		Eventually(t, 40*time.Second, what, func() error {
			if got := f(); got != want {
				return fmt.Errorf("%s: %v, want %v", what, got, want)
			}
			return nil
		})
	}

	// No NSG: everything passes (the positive control of what follows).
	if !sshOK() || !httpOK() || !inside() {
		t.Fatalf("without an NSG: ssh %v, http %v, inside the VNET %v; want all", sshOK(), httpOK(), inside())
	}

	// SSH denied from the Internet, the web allowed: SSH through the NAT
	// port fails as on Azure; HTTP passes; the VNET and the probes are
	// allowed by Azure's default rules.
	nsgPut(e, "webNSG", nsgRule("deny-ssh", 100, "Deny", "Tcp", "Internet", "22"), nsgRule("allow-web", 200, "Allow", "Tcp", "*", "80"))
	nsgAttachToSubnet(e, "webVNET", "webSubnet", "webNSG")
	wait("ssh through the NAT port with SSH denied", sshOK, false)
	if !httpOK() {
		t.Error("HTTP through the load balancer failed with port 80 allowed")
	}
	if !inside() {
		t.Error("port 22 inside the VNET was blocked by a rule about the Internet (AllowVnetInBound)")
	}
	if st, err := lbStates(e, "webLB", ""); err != nil || st[insts[0].Netns] != "Up" || st[insts[1].Netns] != "Up" {
		t.Errorf("probes with AllowAzureLoadBalancerInBound: %v %v, want both Up", st, err)
	}

	// Deny everything at priority 100: the probes fail too (as on Azure) and
	// the load balancer has no healthy backend.
	nsgPut(e, "webNSG", nsgRule("deny-all", 100, "Deny", "*", "*", "*"))
	lbWaitStates(e, "webLB", "", map[string]string{insts[0].Netns: "Down", insts[1].Netns: "Down"}, 40*time.Second)
	if httpOK() {
		t.Error("HTTP passed with every inbound flow denied")
	}
	if inside() {
		t.Error("port 22 inside the VNET was open with every inbound flow denied")
	}

	// Only Azure's defaults: the Internet is denied (DenyAllInBound), the
	// VNET and the probes are allowed.
	nsgPut(e, "webNSG")
	lbWaitStates(e, "webLB", "", map[string]string{insts[0].Netns: "Up", insts[1].Netns: "Up"}, 40*time.Second)
	wait("inside the VNET with the default rules", inside, true)
	if sshOK() || httpOK() {
		t.Error("the Internet got in with only the default rules (DenyAllInBound)")
	}

	// The NSG removed from the subnet: nothing is filtered again.
	nsgAttachToSubnet(e, "webVNET", "webSubnet", "")
	wait("ssh through the NAT port without an NSG", sshOK, true)
	if !httpOK() {
		t.Error("HTTP failed after the NSG was removed")
	}

	// Bad rules change nothing: Azure's errors name the rule.
	out, err := e.CLI("rest", "-m", "put", "-u", nsgSub+"/Microsoft.Network/networkSecurityGroups/webNSG", "-b",
		`{"properties":{"securityRules":[{"name":"x","properties":{"priority":50,"direction":"Inbound","access":"Allow","protocol":"Tcp","sourceAddressPrefix":"*","sourcePortRange":"*","destinationAddressPrefix":"*","destinationPortRange":"22"}}]}}`)
	if err == nil || !strings.Contains(out+err.Error(), "SecurityRuleInvalidPriority") {
		t.Errorf("priority 50: %v %s, want SecurityRuleInvalidPriority", err, out)
	}
	var g map[string]any
	e.JSON(&g, "rest", "-u", nsgSub+"/Microsoft.Network/networkSecurityGroups/webNSG")
	if s := fmt.Sprint(g); !strings.Contains(s, "DenyAllInBound") || strings.Contains(s, "priority:50") {
		t.Errorf("NSG after a refused change: %v (want the default rules listed and no rule of priority 50)", g)
	}
}
