package main

import (
	"net/http"

	"github.com/spf13/cobra"

	"github.com/vmss-emulator/vmss/arm"
)

// faultCmd injects faults the emulator can simulate (not an Azure verb).
func faultCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "fault", Short: "Emulator-only fault injection: take a fault domain down and up again"}
	for _, state := range []string{"down", "up"} {
		state := state
		var fd int
		sc := &cobra.Command{
			Use:   state + " -n NAME --fault-domain N",
			Short: map[string]string{"down": "Stop every instance of a fault domain (they stay in the model; load balancers route around them)", "up": "Bring a fault domain back"}[state],
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				path := g.rid(arm.TypeScaleSet, nameFlag(cmd)) + "/injectFault"
				return g.send(ctxOf(cmd), http.MethodPost, path, map[string]any{"faultDomain": fd, "state": state}, nil, false, nil)
			},
		}
		sc.Flags().StringP("name", "n", "", "scale set (required)")
		sc.Flags().IntVar(&fd, "fault-domain", 0, "fault domain number (0-4)")
		must(sc.MarkFlagRequired("name"))
		must(sc.MarkFlagRequired("fault-domain"))
		c.AddCommand(sc)
	}
	return c
}
