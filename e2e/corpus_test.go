package e2e

// The template corpus: templates written the way real ones are, one per
// behaviour Azure has and the emulator must have, each deployed unmodified
// and checked end to end with OpenSSH and curl from the host. The cases run
// in parallel, each in a daemon of its own.

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// corpusCase is one template of the corpus: how to deploy it and what to
// check once it is deployed.
type corpusCase struct {
	name     string
	template string
	params   func(key string) []string
	check    func(t *testing.T, e *Env, c *sshClient, group string)
}

var corpus = []corpusCase{
	{
		// One adminPasswordOrKey parameter passed to adminPassword, with a
		// key-only linuxConfiguration: the password is ignored.
		name: "key-only-with-password", template: "../deploy/testdata/passwordorkey.json",
		params: func(key string) []string {
			return []string{"vmssName=keyonly", "instanceCount=1", "adminUsername=" + sshUser,
				"authenticationType=sshPublicKey", "adminPasswordOrKey=" + key}
		},
		check: func(t *testing.T, e *Env, c *sshClient, g string) {
			for id, ep := range corpusConnInfo(t, e, g, "keyonly", 1) {
				corpusSSH(t, c, ep, "keyonly", "key login to instance "+id)
				if m := c.authMethods(ep); strings.Contains(m, "password") {
					t.Errorf("key-only instance %s offers %q", id, m)
				}
			}
		},
	},
	{
		// The same template with authenticationType password: password only.
		name: "password-only", template: "../deploy/testdata/passwordorkey.json",
		params: func(string) []string {
			return []string{"vmssName=pwonly", "instanceCount=1", "adminUsername=" + sshUser,
				"authenticationType=password", "adminPasswordOrKey=" + depPassword}
		},
		check: func(t *testing.T, e *Env, c *sshClient, g string) {
			for id, ep := range corpusConnInfo(t, e, g, "pwonly", 1) {
				Eventually(t, 30*time.Second, "password login to instance "+id, func() error {
					if r := c.passwordSSH(depPassword, ep, "hostname"); r.Code != 0 || !strings.HasPrefix(r.Out(), "pwonly") {
						return fmt.Errorf("password ssh %s: %s", ep, r)
					}
					return nil
				})
				if r := c.ssh(ep, "true"); r.Code == 0 {
					t.Errorf("password-only instance %s accepted a key", id)
				}
			}
		},
	},
	{
		// publicIPAddressConfiguration: every instance on an address of its own.
		name: "per-instance-public-ip", template: "testdata/corpus/publicip.json",
		params: func(key string) []string {
			return []string{"vmssName=pip", "instanceCount=2", "adminUsername=" + sshUser, "sshPublicKey=" + key, "dnsLabel=corpus"}
		},
		check: func(t *testing.T, e *Env, c *sshClient, g string) {
			pips := instancePIPs(e, g, "pip")
			insts := e.Instances("pip", "-g", g)
			if len(pips) != 2 || len(insts) != 2 {
				t.Fatalf("public IPs %+v for %d instances, want 2", pips, len(insts))
			}
			for _, in := range insts {
				pipCheckInstance(t, e, c, g, "pip", in.InstanceID, pips[in.InstanceID].IPAddress, in.OSProfile.ComputerName)
			}
		},
	},
	{
		// Inbound NAT rule version 2: a port range on a backend pool.
		name: "nat-rule-v2", template: "../deploy/testdata/natrulev2.json",
		params: func(key string) []string {
			return []string{"vmssName=natv2", "instanceCount=2", "adminUsername=" + sshUser, "sshPublicKey=" + key,
				"natPortStart=50200", "natPortEnd=50209"}
		},
		check: func(t *testing.T, e *Env, c *sshClient, g string) {
			for id, ep := range corpusConnInfo(t, e, g, "natv2", 2) {
				corpusSSH(t, c, ep, "natv2", "ssh through NAT rule v2 to instance "+id)
			}
		},
	},
	{
		// An NSG that allows HTTP and denies SSH from the Internet.
		name: "nsg-deny-allow", template: "testdata/corpus/nsg.json",
		params: func(key string) []string {
			return []string{"vmssName=nsg", "adminUsername=" + sshUser, "sshPublicKey=" + key}
		},
		check: func(t *testing.T, e *Env, c *sshClient, g string) {
			eps := corpusConnInfo(t, e, g, "nsg", 1)
			ep := eps["0"]
			host, _ := splitEP(t, ep)
			Eventually(t, 60*time.Second, "HTTP allowed through the load balancer", func() error {
				body, err := curlGet("http://" + host + "/")
				if err != nil || !strings.Contains(body, "Hello from") {
					return fmt.Errorf("%q (%v)", body, err)
				}
				return nil
			})
			if r := c.quickSSH(ep, "true"); r.Code == 0 {
				t.Errorf("ssh through NAT %s got in with SSH denied from the Internet", ep)
			}
			// Positive control: without the deny rule the same login works.
			nsgRest(e, "put", "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"+g+"/providers/Microsoft.Network/networkSecurityGroups/nsg-nsg",
				map[string]any{"location": "eastus", "properties": map[string]any{"securityRules": []any{
					nsgRule("allow-web", 100, "Allow", "Tcp", "Internet", "80"),
					nsgRule("allow-ssh", 110, "Allow", "Tcp", "Internet", "22"),
				}}})
			corpusSSH(t, c, ep, "nsg", "ssh once the deny rule is gone")
		},
	},
	{
		// An internal load balancer with a dynamic frontend, and a jumpbox
		// in the same subnet that reaches it.
		name: "internal-lb-jumpbox", template: "testdata/corpus/ilbjumpbox.json",
		params: func(key string) []string {
			return []string{"prefix=ilb", "instanceCount=2", "adminUsername=" + sshUser, "sshPublicKey=" + key}
		},
		check: func(t *testing.T, e *Env, c *sshClient, g string) {
			lb := e.MustCLI("rest", "-u", "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"+g+"/providers/Microsoft.Network/loadBalancers/ilb-ilb")
			m := regexp.MustCompile(`"privateIPAddress":\s*"(10\.2\.0\.\d+)"`).FindStringSubmatch(lb)
			if m == nil {
				t.Fatalf("the internal frontend got no address of the subnet: %s", lb)
			}
			ilb := m[1]
			dep := e.MustCLI("deployment", "show", "-g", g, "-n", "ilbjumpbox")
			if !strings.Contains(dep, ilb) {
				t.Errorf("the deployment's output does not give the frontend's address %s: %s", ilb, dep)
			}
			var jb sshVMDetails
			e.JSON(&jb, "vm", "show", "-d", "-g", g, "-n", "ilb-jb")
			if jb.SSHEndpoint == "" {
				t.Fatalf("jumpbox has no SSH endpoint: %+v", jb)
			}
			corpusSSH(t, c, jb.SSHEndpoint, "ilb-jb", "ssh to the jumpbox")
			seen := map[string]bool{}
			Eventually(t, 60*time.Second, "both instances answer through the internal load balancer from the jumpbox", func() error {
				r := c.ssh(jb.SSHEndpoint, "curl -sS --max-time 3 http://"+ilb+"/")
				if r.Code != 0 || !strings.Contains(r.Out(), "Hello from") {
					return fmt.Errorf("curl from the jumpbox: %s", r)
				}
				seen[lbInstanceOf(r.Out())] = true
				if len(seen) < 2 {
					return fmt.Errorf("only %v answered so far", seen)
				}
				return nil
			})
			if _, err := curlGet("http://" + net.JoinHostPort(ilb, "80") + "/"); err == nil {
				t.Errorf("the internal frontend %s answers from the host", ilb)
			}
		},
	},
}

// corpusConnInfo is the connection info of a set, which must have n instances.
func corpusConnInfo(t *testing.T, e *Env, g, set string, n int) map[string]string {
	t.Helper()
	eps := wildConnInfo(e, g, set)
	if len(eps) != n {
		t.Fatalf("%s: connection info %v, want %d instances", set, eps, n)
	}
	return eps
}

// corpusSSH logs in with the key and checks the host name's prefix.
func corpusSSH(t *testing.T, c *sshClient, ep, namePrefix, what string) {
	t.Helper()
	Eventually(t, 60*time.Second, what, func() error {
		if r := c.ssh(ep, "hostname"); r.Code != 0 || !strings.HasPrefix(strings.ToLower(r.Out()), strings.ToLower(namePrefix)) {
			return fmt.Errorf("ssh %s hostname: %s, want %s...", ep, r, namePrefix)
		}
		return nil
	})
}

func TestTemplateCorpus(t *testing.T) {
	t.Parallel()
	for _, tc := range corpus {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := Start(t, Options{})
			c := newSSHClient(t)
			pub, err := os.ReadFile(c.Pub)
			if err != nil {
				t.Fatal(err)
			}
			g := "corpus" + strings.ReplaceAll(tc.name, "-", "")
			args := append([]string{"deployment", "create", "-g", g, "--template-file", tc.template, "--parameters"},
				tc.params(strings.TrimSpace(string(pub)))...)
			e.MustCLI(append(args, "-o", "none")...)
			tc.check(t, e, c, g)
		})
	}
}
