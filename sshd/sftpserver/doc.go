// Package sftpserver is the server side of the SFTP subsystem.
//
// The SSH server does not serve files itself: for the "sftp" subsystem it
// starts a program inside the instance, as the logged-in user, and connects
// the channel to that program's stdin and stdout. That program is the
// `vmss sftp-server` subcommand, which calls Serve:
//
//	err := sftpserver.Serve(ctx, os.Stdin, os.Stdout)
//
// So files are served from the instance's mount namespace with the user's
// permissions, relative to the working directory the program was started
// in (the user's home).
//
// Non-goals: chroot, read-only mode, and any access control beyond the
// operating system's.
package sftpserver
