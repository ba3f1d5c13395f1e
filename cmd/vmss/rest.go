package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// restCmd sends any ARM request to the daemon (az rest).
func restCmd(g *globals) *cobra.Command {
	var method, url, body string
	c := &cobra.Command{Use: "rest", Short: "Send an ARM request to the daemon (az rest)", Args: cobra.NoArgs,
		Example: `  sudo vmss rest --method get --url /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default/providers/Microsoft.Compute/virtualMachineScaleSets`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var b any
			if body != "" {
				if strings.HasPrefix(body, "@") {
					data, err := os.ReadFile(body[1:])
					if err != nil {
						return err
					}
					b = data
				} else {
					b = []byte(body)
				}
			}
			var out any
			op, err := g.client().Do(ctxOf(cmd), strings.ToUpper(method), url, b, &out)
			if err != nil {
				return err
			}
			if !op.Done() {
				fmt.Fprintln(os.Stderr, "Azure-AsyncOperation:", op.URL)
			}
			if out == nil {
				return nil
			}
			return g.print(os.Stdout, out, nil)
		}}
	c.Flags().StringVarP(&method, "method", "m", "get", "HTTP method")
	c.Flags().StringVarP(&url, "url", "u", "", "ARM path (required)")
	c.Flags().StringVarP(&body, "body", "b", "", "request body, or @file")
	must(c.MarkFlagRequired("url"))
	return c
}
