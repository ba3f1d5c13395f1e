package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

const signalChildEnv = "VMSS_TEST_SIGNAL_CHILD"

// TestSecondSignalExits: the first SIGTERM starts a graceful stop (here one
// that hangs); the second one ends the process at once.
func TestSecondSignalExits(t *testing.T) {
	if os.Getenv(signalChildEnv) != "" {
		ctx, _ := interruptible()
		fmt.Println("ready")
		<-ctx.Done()
		fmt.Println("stopping")
		select {} // a stop that never ends
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestSecondSignalExits$")
	cmd.Env = append(os.Environ(), signalChildEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case l := <-lines:
			if l != want {
				t.Fatalf("child said %q, want %q", l, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("child did not say %q", want)
		}
	}
	expect("ready")
	_ = cmd.Process.Signal(syscall.SIGTERM)
	expect("stopping")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		t.Fatalf("child exited on the first signal: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Fatalf("child after the second signal: %v, want exit status 130", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("child still running after the second signal")
	}
}
