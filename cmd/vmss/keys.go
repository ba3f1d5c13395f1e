package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/vmss-emulator/vmss/internal/atomicfile"
)

// invokingHome is the home of the user who ran sudo (their keys are the ones
// they will ssh with), else the current user's.
func invokingHome() (home string, uid, gid int) {
	if name := os.Getenv("SUDO_USER"); name != "" && name != "root" {
		if u, err := user.Lookup(name); err == nil {
			// On Linux, user ids are decimal numbers.
			uid, _ = strconv.Atoi(u.Uid)
			gid, _ = strconv.Atoi(u.Gid)
			return u.HomeDir, uid, gid
		}
	}
	h, _ := os.UserHomeDir() // without $HOME, "": key paths then name the missing directory in their error
	return h, os.Getuid(), os.Getgid()
}

// sshKeyValues resolves --ssh-key-values (key text or files) and
// --generate-ssh-keys into public keys, as az does: with neither, an existing
// ~/.ssh key is used.
func sshKeyValues(values []string, generate bool) ([]string, error) {
	var keys []string
	for _, v := range values {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if strings.HasPrefix(v, "ssh-") || strings.HasPrefix(v, "ecdsa-") {
			keys = append(keys, v)
			continue
		}
		data, err := os.ReadFile(expandHome(v))
		if err != nil {
			return nil, fmt.Errorf("--ssh-key-values %s: neither a public key nor a readable file: %w", v, err)
		}
		keys = append(keys, strings.TrimSpace(string(data)))
	}
	for _, k := range keys {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k)); err != nil {
			return nil, fmt.Errorf("an SSH public key is not valid (%v); give a key such as the content of ~/.ssh/id_ed25519.pub", err)
		}
	}
	if len(keys) > 0 {
		return keys, nil
	}
	home, uid, gid := invokingHome()
	dir := filepath.Join(home, ".ssh")
	for _, n := range []string{"id_rsa.pub", "id_ed25519.pub", "id_ecdsa.pub"} {
		if data, err := os.ReadFile(filepath.Join(dir, n)); err == nil {
			return []string{strings.TrimSpace(string(data))}, nil
		}
	}
	if !generate {
		return nil, fmt.Errorf("no SSH public key in %s: pass --generate-ssh-keys to create one, --ssh-key-values to give one, or --admin-password with --authentication-type password", dir)
	}
	pub, err := generateRSA(dir, uid, gid)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "SSH key files '%s' and '%s' have been generated under %s. They will be used to log in to the instances.\n", "id_rsa", "id_rsa.pub", dir)
	return []string{pub}, nil
}

func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		home, _, _ := invokingHome()
		return filepath.Join(home, p[2:])
	}
	return p
}

// generateRSA writes ~/.ssh/id_rsa and id_rsa.pub owned by uid:gid.
func generateRSA(dir string, uid, gid int) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return "", fmt.Errorf("give %s to uid %d: %w", dir, uid, err)
	}
	k, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(k, "")
	if err != nil {
		return "", err
	}
	priv := filepath.Join(dir, "id_rsa")
	if err := atomicfile.WriteNew(priv, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", err
	}
	sp, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		return "", err
	}
	pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
	if err := atomicfile.Write(priv+".pub", []byte(pub+"\n"), 0o644); err != nil {
		return "", err
	}
	for _, f := range []string{priv, priv + ".pub"} {
		if err := os.Chown(f, uid, gid); err != nil {
			return "", fmt.Errorf("give %s to uid %d (ssh refuses a key its user cannot read): %w", f, uid, err)
		}
	}
	return pub, nil
}
