package main

import (
	"fmt"
	"net/http"
	"os"

	"github.com/spf13/cobra"

	"github.com/vmss-emulator/vmss/arm"
)

// runCommandCmd is az vmss run-command invoke (vm: az vm run-command invoke).
func runCommandCmd(g *globals, vm bool) *cobra.Command {
	c := &cobra.Command{Use: "run-command", Short: "Run a shell script as root inside an instance"}
	var instID, commandID string
	var scripts []string
	inv := &cobra.Command{
		Use:     "invoke",
		Short:   "Run a script and print its output (az " + map[bool]string{true: "vm", false: "vmss"}[vm] + " run-command invoke)",
		Example: `  sudo vmss run-command invoke -n web --instance-id 0 --command-id RunShellScript --scripts "hostname" "ip -br a"`,
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path := g.rid(arm.TypeVM, nameFlag(cmd))
			if !vm {
				if instID == "" {
					return fmt.Errorf("--instance-id is required")
				}
				path = g.rid(arm.TypeScaleSet, nameFlag(cmd)) + "/virtualMachines/" + instID
			}
			var out map[string]any
			body := map[string]any{"commandId": commandID, "script": append(scripts, args...)}
			if _, err := g.client().Do(ctxOf(cmd), http.MethodPost, path+"/runCommand", body, &out); err != nil {
				return err
			}
			if g.output == "tsv" {
				fmt.Print(str(dig(out["value"].([]any)[0], "stdout")))
				return nil
			}
			return g.print(os.Stdout, out, nil)
		},
	}
	inv.Flags().StringP("name", "n", "", "scale set or VM name (required)")
	must(inv.MarkFlagRequired("name"))
	if !vm {
		inv.Flags().StringVar(&instID, "instance-id", "", "instance id (required)")
	}
	inv.Flags().StringVar(&commandID, "command-id", "RunShellScript", "only RunShellScript is available")
	inv.Flags().StringSliceVar(&scripts, "scripts", nil, "script lines")
	c.AddCommand(inv)
	return c
}
