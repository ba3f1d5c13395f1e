package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmss-emulator/vmss/arm"
)

func main() {
	ctx, stop := interruptible()
	defer stop()
	err := newRoot().ExecuteContext(ctx)
	if err != nil {
		var ae *arm.Error
		if errors.As(err, &ae) {
			fmt.Fprintf(os.Stderr, "(%s) %s\n", ae.Code, ae.Message)
			if ae.Target != "" {
				fmt.Fprintf(os.Stderr, "Target: %s\n", ae.Target)
			}
		} else {
			fmt.Fprintln(os.Stderr, "error:", err)
		}
		os.Exit(1)
	}
}

// interruptible returns a context that the first Ctrl-C or SIGTERM cancels
// (a daemon then stops gracefully, within its --stop-timeout); a second one
// exits at once.
func interruptible() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigc
		cancel()
		s := <-sigc
		fmt.Fprintf(os.Stderr, "\n%v again: exiting now. What runs stays: 'vmss serve' adopts it, 'vmss cleanup' removes it.\n", s)
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(sigc); cancel() }
}
