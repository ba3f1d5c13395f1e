// Package apitest serves the API for tests of its clients: a Server over a
// fresh state, on a socket in a temporary directory, with a static runtime
// (everything applied and running).
package apitest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/vmss-emulator/vmss/api"
	"github.com/vmss-emulator/vmss/client"
	"github.com/vmss-emulator/vmss/model"
)

// Start serves the API until t ends and returns a client of it and the state.
func Start(t testing.TB) (*client.Client, *model.Store) {
	t.Helper()
	return StartWith(t, nil)
}

// StartWith is Start with the server's settings changed by configure
// (nil: none) before it serves, e.g. a small PageSize.
func StartWith(t testing.TB, configure func(*api.Server)) (*client.Client, *model.Store) {
	t.Helper()
	dir := t.TempDir()
	st, err := model.Open(filepath.Join(dir, "state"), model.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sock := filepath.Join(dir, "vmss.sock")
	ln, err := api.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := &api.Server{Store: st, Runtime: api.StaticRuntime{}}
	if configure != nil {
		configure(srv)
	}
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return client.New(sock), st
}
