package sshd

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/vmss-emulator/vmss/sshd/sftpserver"
)

// TestMain doubles as the SFTP server program of the tests: the test binary
// run as "<binary> sftp-server" serves SFTP on stdin/stdout, as the
// `vmss sftp-server` subcommand does in the product.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "sftp-server" {
		if err := sftpserver.Serve(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	if sharedKeysDir != "" {
		os.RemoveAll(sharedKeysDir)
	}
	os.Exit(code)
}
