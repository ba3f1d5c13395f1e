package e2e

// Templates as they are written in the wild: the patterns of real quickstart
// templates that Azure accepts, deployed unmodified and checked with OpenSSH.

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// wildConnInfo is list-instance-connection-info of a set in a group:
// instance id -> ADDR:PORT.
func wildConnInfo(e *Env, group, set string) map[string]string {
	e.T.Helper()
	var raw map[string]string
	e.JSON(&raw, "list-instance-connection-info", "-g", group, "-n", set)
	out := map[string]string{}
	for k, v := range raw {
		out[strings.TrimPrefix(k, "instance ")] = v
	}
	return out
}

// Quickstarts since 2017 take one adminPasswordOrKey parameter, always pass it
// to osProfile.adminPassword, and add a key-only linuxConfiguration when
// authenticationType is sshPublicKey. Azure accepts both forms and ignores
// the password of the key-only one.
func TestWildAdminPasswordOrKey(t *testing.T) {
	e := Start(t, Options{})
	c := newSSHClient(t)
	pub, err := os.ReadFile(c.Pub)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(pub))

	e.MustCLI("deployment", "create", "-g", "pokkey", "--template-file", "../deploy/testdata/passwordorkey.json",
		"--parameters", "vmssName=pokkey", "instanceCount=2", "adminUsername="+sshUser,
		"authenticationType=sshPublicKey", "adminPasswordOrKey="+key, "-o", "none")
	e.MustCLI("deployment", "create", "-g", "pokpw", "--template-file", "../deploy/testdata/passwordorkey.json",
		"--parameters", "vmssName=pokpw", "instanceCount=1", "adminUsername="+sshUser,
		"authenticationType=password", "adminPasswordOrKey="+depPassword, "-o", "none")

	keyEPs := wildConnInfo(e, "pokkey", "pokkey")
	if len(keyEPs) != 2 {
		t.Fatalf("key-only set: connection info %v, want 2 instances", keyEPs)
	}
	for id, ep := range keyEPs {
		Eventually(t, 30*time.Second, "key login to instance "+id, func() error {
			if r := c.ssh(ep, "hostname"); r.Code != 0 || !strings.HasPrefix(r.Out(), "pokkey") {
				return fmt.Errorf("ssh %s hostname: %s", ep, r)
			}
			return nil
		})
		if m := c.authMethods(ep); strings.Contains(m, "password") {
			t.Errorf("key-only instance %s offers %q: the ignored adminPassword enabled password logins", id, m)
		}
		if r := c.passwordSSH(key, ep, "true"); r.Code == 0 {
			t.Errorf("key-only instance %s accepted the adminPassword value as a password", id)
		}
	}

	pwEPs := wildConnInfo(e, "pokpw", "pokpw")
	if len(pwEPs) != 1 {
		t.Fatalf("password set: connection info %v, want 1 instance", pwEPs)
	}
	for id, ep := range pwEPs {
		Eventually(t, 30*time.Second, "password login to instance "+id, func() error {
			if r := c.passwordSSH(depPassword, ep, "hostname"); r.Code != 0 || !strings.HasPrefix(r.Out(), "pokpw") {
				return fmt.Errorf("password ssh %s hostname: %s", ep, r)
			}
			return nil
		})
		// The password set has no key: the client's key is refused.
		if r := c.ssh(ep, "true"); r.Code == 0 {
			t.Errorf("password-only instance %s accepted a key it was never given", id)
		}
	}
}
