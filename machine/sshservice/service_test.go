package sshservice_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/vmss-emulator/vmss/instance"
	"github.com/vmss-emulator/vmss/machine/machinetest"
	"github.com/vmss-emulator/vmss/machine/sshservice"
	"github.com/vmss-emulator/vmss/reconcile"
)

var _ sshservice.Instances = (*machinetest.Instances)(nil)

func TestServeAuthUpdateAndStop(t *testing.T) {
	root := t.TempDir()
	fake := &machinetest.Instances{Root: root, Specs: map[string]instance.Spec{
		"web_0": {Name: "web_0", Hostname: "web000000", AdminUser: "azureuser", Shell: "/bin/sh"},
	}}
	svc := sshservice.New(sshservice.Config{Instances: fake, KeyDir: filepath.Join(root, "hostkeys")})
	t.Cleanup(func() { svc.Close() })

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	in := reconcile.InstanceSpec{Netns: "web_0", VMName: "web_0", AdminUser: "azureuser",
		PublicKeys: []string{string(ssh.MarshalAuthorizedKey(signer.PublicKey()))}}
	if svc.Serving("web_0") {
		t.Fatal("serving before Serve")
	}
	if err := svc.Serve(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	addr := fake.Listened("web_0", "0.0.0.0:22")
	if addr == "" || !svc.Serving("web_0") {
		t.Fatalf("not serving on port 22 of the instance (listened %q)", addr)
	}
	var hostKey ssh.PublicKey
	login := func(auth ssh.AuthMethod) (*ssh.Client, error) {
		return ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "azureuser", Auth: []ssh.AuthMethod{auth}, Timeout: 10 * time.Second,
			HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error { hostKey = key; return nil }})
	}
	c, err := login(ssh.PublicKeys(signer))
	if err != nil {
		t.Fatalf("key login: %v", err)
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.CombinedOutput("echo hello from the instance")
	c.Close()
	if err != nil || string(out) != "hello from the instance\n" {
		t.Fatalf("command: %q, %v", out, err)
	}
	// The server presents the instance's stored host keys.
	keys, err := svc.HostKeys("web_0", "web_0")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range keys.Signers() {
		if string(s.PublicKey().Marshal()) == string(hostKey.Marshal()) {
			found = true
		}
	}
	if !found {
		t.Fatalf("host key %s is not one of the instance's stored keys", hostKey.Type())
	}

	// Serving again updates who may log in: the key is gone, a password works.
	in.PublicKeys, in.Password = nil, "Secret-pass-1"
	if err := svc.Serve(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if c, err := login(ssh.PublicKeys(signer)); err == nil {
		c.Close()
		t.Fatal("a removed key still logs in")
	}
	c, err = login(ssh.Password("Secret-pass-1"))
	if err != nil {
		t.Fatalf("password login: %v", err)
	}
	c.Close()

	// Stop ends serving.
	svc.Stop("web_0")
	if svc.Serving("web_0") {
		t.Fatal("serving after Stop")
	}
	if c, err := login(ssh.Password("Secret-pass-1")); err == nil {
		c.Close()
		t.Fatal("a stopped instance still answers SSH")
	}
}

// HostKeys loads an instance's keys once (one background RSA generation),
// and DropKeys stops that generation before the key directory goes, so a
// deleted instance's directory is not written to again (it used to be
// recreated, or its removal failed with "directory not empty").
func TestHostKeysOnceAndDropKeys(t *testing.T) {
	root := t.TempDir()
	svc := sshservice.New(sshservice.Config{Instances: &machinetest.Instances{Root: root}, KeyDir: filepath.Join(root, "hostkeys")})
	t.Cleanup(func() { svc.Close() })
	for round := range 20 {
		a, err := svc.HostKeys("web_0", "web_0")
		if err != nil {
			t.Fatal(err)
		}
		b, err := svc.HostKeys("web_0", "web_0")
		if err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Fatal("two calls loaded the keys twice")
		}
		svc.DropKeys("web_0")
		dir := svc.KeyDir("web_0")
		if err := os.RemoveAll(dir); err != nil {
			t.Fatalf("round %d: remove the key directory: %v", round, err)
		}
		time.Sleep(20 * time.Millisecond)
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("round %d: the key directory came back after DropKeys (%v)", round, err)
		}
	}
}
