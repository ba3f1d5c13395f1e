package sftpserver

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pkg/sftp"
)

// pipePair connects a client to Serve through two pipes, as the SSH channel
// and the program's stdin/stdout do.
func pipePair(t *testing.T, ctx context.Context) (*sftp.Client, chan error) {
	t.Helper()
	toServer, fromClient := io.Pipe()
	toClient, fromServer := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, toServer, fromServer) }()
	c, err := sftp.NewClientPipe(toClient, fromClient)
	if err != nil {
		t.Fatal(err)
	}
	return c, done
}

func TestServeFiles(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // Serve works relative to its working directory, the user's home
	c, done := pipePair(t, context.Background())

	if wd, err := c.Getwd(); err != nil || wd != dir {
		t.Fatalf("Getwd = %q, %v; want %q", wd, err, dir)
	}
	if err := c.Mkdir("sub"); err != nil {
		t.Fatal(err)
	}
	f, err := c.Create("sub/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := c.Rename("sub/a.txt", "sub/b.txt"); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "sub", "b.txt")); err != nil || string(got) != "hello" {
		t.Fatalf("file on disk: %q, %v", got, err)
	}
	entries, err := c.ReadDir("sub")
	if err != nil || len(entries) != 1 || entries[0].Name() != "b.txt" || entries[0].Size() != 5 {
		t.Fatalf("ReadDir: %v, %v", entries, err)
	}
	if _, err := c.Stat("missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Stat(missing): %v; want not exist", err)
	}
	if err := c.Remove("sub/b.txt"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after the client closed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the client closed")
	}
}

func TestServeStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c, done := pipePair(t, ctx)
	defer c.Close()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Serve: %v; want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after ctx ended")
	}
}
