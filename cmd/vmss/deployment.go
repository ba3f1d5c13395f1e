package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func deploymentCmd(g *globals) *cobra.Command {
	d := &cobra.Command{Use: "deployment", Short: "Deploy ARM templates (az deployment group)"}
	grp := &cobra.Command{Use: "group", Short: "Deployments to a resource group (same verbs as vmss deployment)"}
	for _, parent := range []*cobra.Command{d, grp} {
		parent.AddCommand(deployCreate(g, false), deployCreate(g, true), deployShow(g), deployList(g), deployDelete(g))
	}
	d.AddCommand(grp)
	return d
}

type deployFlags struct {
	name, file, mode string
	params           []string
	noWait           bool
	skipUnknown      bool
}

func deployCreate(g *globals, whatIf bool) *cobra.Command {
	var f deployFlags
	use, short := "create", "Deploy a template (az deployment group create)"
	if whatIf {
		use, short = "what-if", "Show what a deployment would change, changing nothing (az deployment group what-if)"
	}
	c := &cobra.Command{Use: use + " [name=value | @file.json]...", Short: short,
		Example: `  sudo vmss deployment create -g demo --template-file azuredeploy.json --parameters @azuredeploy.parameters.json adminPassword='S3cret!pass'`,
		// As in az, --parameters takes several values: the words after it
		// (name=value, @file.json, a JSON object) are parameters too.
		Args: func(_ *cobra.Command, args []string) error {
			for _, a := range args {
				if !strings.Contains(a, "=") && !strings.HasPrefix(a, "@") && !strings.HasPrefix(strings.TrimSpace(a), "{") {
					return fmt.Errorf("unexpected argument %q: parameters are name=value, @file.json or a JSON object", a)
				}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			f := f
			f.params = append(append([]string(nil), f.params...), args...)
			body, name, err := deploymentBody(f)
			if err != nil {
				return err
			}
			path := "/subscriptions/" + g.client().Subscription + "/resourceGroups/" + g.group + "/providers/Microsoft.Resources/deployments/" + name
			ctx := ctxOf(cmd)
			var out map[string]any
			if whatIf {
				if _, err := g.client().Do(ctx, http.MethodPost, path+"/whatIf", body, &out); err != nil {
					return err
				}
				if g.output == "table" || g.output == "json" && stdoutIsTerminal() {
					printWhatIf(out)
					return nil
				}
				return g.print(os.Stdout, out, nil)
			}
			if err := g.send(ctx, http.MethodPut, path, body, &out, f.noWait, nil); err != nil {
				// Show what did and did not deploy.
				var v map[string]any
				if _, gerr := g.client().Do(ctx, http.MethodGet, path, nil, &v); gerr == nil {
					_ = g.print(os.Stderr, v, deployColumns) // progress on stderr; the result is printed at the end
				}
				return err
			}
			return g.print(os.Stdout, out, deployColumns)
		}}
	c.Flags().StringVarP(&f.name, "name", "n", "", "deployment name (default: the template file's name)")
	c.Flags().StringVarP(&f.file, "template-file", "f", "", "template file (required)")
	c.Flags().StringArrayVarP(&f.params, "parameters", "p", nil, "@file.json, name=value, or a JSON object; repeatable")
	c.Flags().StringVar(&f.mode, "mode", "Incremental", "Incremental or Complete")
	c.Flags().BoolVar(&f.noWait, "no-wait", false, "do not wait")
	c.Flags().BoolVar(&f.skipUnknown, "skip-unknown-types", false, "emulator: record resource types it does not emulate as skipped, with a warning, instead of failing")
	must(c.MarkFlagRequired("template-file"))
	return c
}

// deploymentBody reads the template and parameters into an ARM deployment body.
// name=value parameters are typed by the template's parameter declarations.
func deploymentBody(f deployFlags) (map[string]any, string, error) {
	data, err := os.ReadFile(f.file)
	if err != nil {
		return nil, "", fmt.Errorf("--template-file: %w", err)
	}
	var tpl map[string]any
	if err := json.Unmarshal(data, &tpl); err != nil {
		return nil, "", fmt.Errorf("template %s is not valid JSON: %w", f.file, err)
	}
	decl, _ := tpl["parameters"].(map[string]any)
	params := map[string]any{}
	for _, p := range f.params {
		p = strings.TrimSpace(p)
		switch {
		case strings.HasPrefix(p, "@"):
			pd, err := os.ReadFile(p[1:])
			if err != nil {
				return nil, "", fmt.Errorf("--parameters %s: %w", p, err)
			}
			if err := mergeParamDoc(params, pd); err != nil {
				return nil, "", fmt.Errorf("parameter file %s: %w", p[1:], err)
			}
		case strings.HasPrefix(p, "{"):
			if err := mergeParamDoc(params, []byte(p)); err != nil {
				return nil, "", fmt.Errorf("--parameters: %w", err)
			}
		default:
			k, v, ok := strings.Cut(p, "=")
			if !ok {
				return nil, "", fmt.Errorf("--parameters %q: use name=value, @file.json or a JSON object", p)
			}
			typed, err := typedParam(decl, k, v)
			if err != nil {
				return nil, "", err
			}
			params[k] = map[string]any{"value": typed}
		}
	}
	name := f.name
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(f.file), filepath.Ext(f.file))
	}
	props := map[string]any{"mode": f.mode, "template": tpl, "parameters": params}
	if f.skipUnknown {
		props["emulatorOptions"] = map[string]any{"skipUnknownResourceTypes": true}
	}
	return map[string]any{"properties": props}, name, nil
}

func mergeParamDoc(params map[string]any, data []byte) error {
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		return err
	}
	if inner, ok := doc["parameters"].(map[string]any); ok {
		doc = inner
	}
	for k, v := range doc {
		if strings.HasPrefix(k, "$") || k == "contentVersion" {
			continue
		}
		params[k] = v
	}
	return nil
}

func typedParam(decl map[string]any, name, v string) (any, error) {
	var typ string
	for k, d := range decl {
		if strings.EqualFold(k, name) {
			typ = strings.ToLower(str(dig(d, "type")))
		}
	}
	switch typ {
	case "int":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parameter %s is an int; %q is not a number", name, v)
		}
		return n, nil
	case "bool":
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("parameter %s is a bool; %q is not true or false", name, v)
		}
		return b, nil
	case "object", "secureobject", "array":
		var x any
		if err := json.Unmarshal([]byte(v), &x); err != nil {
			return nil, fmt.Errorf("parameter %s is an %s; give JSON: %w", name, typ, err)
		}
		return x, nil
	}
	return v, nil
}

var deployColumns = []column{col("Name", "name"), col("State", "provisioningState"), col("Mode", "mode"), col("Timestamp", "timestamp"), col("Duration", "duration")}

func deployShow(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "show", Short: "Show a deployment: status per resource and outputs", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := g.get(ctxOf(cmd), "/subscriptions/"+g.client().Subscription+"/resourceGroups/"+g.group+"/providers/Microsoft.Resources/deployments/"+nameFlag(cmd))
			if err != nil {
				return err
			}
			return g.print(os.Stdout, v, deployColumns)
		}}
	c.Flags().StringP("name", "n", "", "deployment name (required)")
	must(c.MarkFlagRequired("name"))
	return c
}

func deployList(g *globals) *cobra.Command {
	return &cobra.Command{Use: "list", Short: "List deployments of the group", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := g.list(ctxOf(cmd), "/subscriptions/"+g.client().Subscription+"/resourceGroups/"+g.group+"/providers/Microsoft.Resources/deployments")
			if err != nil {
				return err
			}
			return g.print(os.Stdout, v, deployColumns)
		}}
}

func deployDelete(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "delete", Short: "Delete a deployment record (its resources stay, as in Azure)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.send(ctxOf(cmd), http.MethodDelete, "/subscriptions/"+g.client().Subscription+"/resourceGroups/"+g.group+"/providers/Microsoft.Resources/deployments/"+nameFlag(cmd), nil, nil, false, nil)
		}}
	c.Flags().StringP("name", "n", "", "deployment name (required)")
	must(c.MarkFlagRequired("name"))
	return c
}

// printWhatIf prints changes as az does: + create, ~ modify, - delete, = no change.
func printWhatIf(out map[string]any) {
	changes, _ := dig(out, "properties.changes").([]any)
	if changes == nil {
		changes, _ = out["changes"].([]any)
	}
	sym := map[string]string{"Create": "+", "Modify": "~", "Delete": "-", "NoChange": "=", "Ignore": "*", "Deploy": "!"}
	counts := map[string]int{}
	for _, c := range changes {
		t := str(dig(c, "changeType"))
		counts[t]++
		fmt.Printf("  %s %s\n", sym[t], str(dig(c, "resourceId")))
		deltas, _ := dig(c, "delta").([]any)
		for _, d := range deltas {
			fmt.Printf("      %s %s: %s => %s\n", sym[str(dig(d, "propertyChangeType"))], str(dig(d, "path")), str(dig(d, "before")), str(dig(d, "after")))
		}
	}
	fmt.Printf("\nResource changes: %d to create, %d to modify, %d to delete, %d unchanged.\n", counts["Create"], counts["Modify"], counts["Delete"], counts["NoChange"])
}
