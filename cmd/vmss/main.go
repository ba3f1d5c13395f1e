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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
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
