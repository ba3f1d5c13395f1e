package nsg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// ErrNoNft says that the host has no nft program: filters cannot be
// applied (install the nftables package).
var ErrNoNft = errors.New("nft not found: network security groups are not enforced on this host (apt-get install nftables)")

// Runner loads an nftables script inside a network namespace.
type Runner interface {
	Load(ctx context.Context, netnsPath, script string) error
}

// Nft is the Runner that runs `nsenter --net=PATH nft -f -`.
type Nft struct{}

// Load implements Runner.
func (Nft) Load(ctx context.Context, netnsPath, script string) error {
	nft, err := exec.LookPath("nft")
	if err != nil {
		return ErrNoNft
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return fmt.Errorf("nsg: nsenter not found (apt-get install util-linux): %w", err)
	}
	cmd := exec.CommandContext(ctx, nsenter, "--net="+netnsPath, nft, "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nsg: load the filter into %s: %w: %s", netnsPath, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// Apply makes the filter of the instance whose network namespace is at
// netnsPath what in says (removing it when no NSG applies).
func Apply(ctx context.Context, r Runner, netnsPath string, in Instance) error {
	return r.Load(ctx, netnsPath, Script(in))
}
