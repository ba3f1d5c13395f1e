package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/vmss-emulator/vmss/sshd/sftpserver"
	"github.com/vmss-emulator/vmss/webapp"
)

// internalCmds run inside instances: the built-in web app and the SFTP server.
func internalCmds() []*cobra.Command {
	var addr, name, id string
	app := &cobra.Command{
		Use:   "webapp",
		Short: "Run the built-in web app (inside an instance): answers with the computer name and instance id",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				h, err := os.Hostname()
				if err != nil {
					return err
				}
				name = h
			}
			if id == "" {
				id = os.Getenv("VMSS_INSTANCE_ID")
			}
			return webapp.Run(cmd.Context(), addr, name, id)
		},
	}
	app.Flags().StringVar(&addr, "addr", ":80", "listen address")
	app.Flags().StringVar(&name, "name", "", "computer name to report (default: the host name)")
	app.Flags().StringVar(&id, "instance-id", "", "instance id to report (default: $VMSS_INSTANCE_ID)")
	sftp := &cobra.Command{
		Use:    "sftp-server",
		Short:  "Serve SFTP on stdin/stdout (the SSH server starts it inside an instance)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := sftpserver.Serve(cmd.Context(), os.Stdin, os.Stdout); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return err
			}
			return nil
		},
	}
	return []*cobra.Command{app, sftp}
}
