package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/client"
)

// globals are the flags every command has.
type globals struct {
	socket string
	output string
	group  string
	query  string
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "vmss",
		Short: "Azure Virtual Machine Scale Sets networking, emulated on one Linux host",
		Long: `vmss emulates Azure VM Scale Sets networking on this machine: VNETs, scale-set
instances as Linux namespaces, internal DNS, load balancers with health probes,
inbound NAT to an SSH server in every instance, and jumpbox VMs.

Start the daemon with 'sudo vmss serve' (or try 'sudo vmss up'), then use the
az-style verbs below. Every verb talks to the daemon's ARM API on its unix socket.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.socket, "socket", envOr("VMSS_SOCKET", client.DefaultSocket), "the daemon's control socket")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "json", "output format: json, table, tsv or none")
	root.PersistentFlags().StringVarP(&g.group, "resource-group", "g", envOr("VMSS_RESOURCE_GROUP", "default"), "resource group")
	root.AddCommand(
		serveCmd(g), upCmd(g), cleanupCmd(g), azConfigCmd(),
	)
	addScaleSetCommands(root, g)
	root.AddCommand(runCommandCmd(g, false), vmCmd(g), networkCmd(g), lbShortCmd(g), deploymentCmd(g), groupCmd(g), faultCmd(g), restCmd(g), monitorCmd(g))
	root.AddCommand(internalCmds()...)
	return root
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func (g *globals) client() *client.Client { return client.New(g.socket) }

// needRoot fails early with the fix when not running as root.
func needRoot() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("vmss needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to manage namespaces and its control socket: run it with sudo")
	}
	return nil
}

// stdoutIsTerminal reports whether progress can be drawn.
func stdoutIsTerminal() bool {
	return term.IsTerminal(int(os.Stderr.Fd())) && term.IsTerminal(int(os.Stdout.Fd()))
}

// column describes one table column: a header and how to read it.
type column struct {
	Header string
	Get    func(v map[string]any) string
}

// col reads a dotted path from a flattened object.
func col(header, path string) column {
	return column{Header: header, Get: func(v map[string]any) string { return str(dig(v, path)) }}
}

func dig(v any, path string) any {
	for _, p := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		if x == float64(int64(x)) {
			return fmt.Sprintf("%d", int64(x))
		}
		return fmt.Sprint(x)
	case bool:
		if x {
			return "True"
		}
		return "False"
	case []any:
		var parts []string
		for _, e := range x {
			parts = append(parts, str(e))
		}
		return strings.Join(parts, ",")
	default:
		b, _ := json.Marshal(x) // a value decoded from JSON encodes
		return string(b)
	}
}

// flatten turns an ARM object into az's output shape: properties merged into
// the top level.
func flatten(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, val := range x {
			if k == "properties" {
				if pm, ok := val.(map[string]any); ok {
					for pk, pv := range pm {
						out[pk] = flatten(pv)
					}
					continue
				}
			}
			out[k] = flatten(val)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = flatten(x[i])
		}
		return out
	}
	return v
}

// toGeneric round-trips v through JSON.
func toGeneric(v any) any {
	// Values here came from JSON (API answers) or are our own maps: they encode.
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

// print writes v (an object or a list) in the chosen format. Objects are
// flattened as az does; table and tsv use cols.
func (g *globals) print(w io.Writer, v any, cols []column) error {
	gv := flatten(toGeneric(v))
	addGroups(gv)
	switch g.output {
	case "json", "jsonc", "":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(gv)
	case "none":
		return nil
	case "table", "tsv":
		rows := []map[string]any{}
		switch x := gv.(type) {
		case []any:
			for _, e := range x {
				if m, ok := e.(map[string]any); ok {
					rows = append(rows, m)
				}
			}
		case map[string]any:
			rows = append(rows, x)
		}
		if len(cols) == 0 {
			cols = defaultColumns(rows)
		}
		if g.output == "tsv" {
			for _, r := range rows {
				var f []string
				for _, c := range cols {
					f = append(f, c.Get(r))
				}
				fmt.Fprintln(w, strings.Join(f, "\t"))
			}
			return nil
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		var hs, rules []string
		for _, c := range cols {
			hs = append(hs, c.Header)
			rules = append(rules, strings.Repeat("-", len(c.Header)))
		}
		fmt.Fprintln(tw, strings.Join(hs, "\t"))
		fmt.Fprintln(tw, strings.Join(rules, "\t"))
		for _, r := range rows {
			var f []string
			for _, c := range cols {
				f = append(f, c.Get(r))
			}
			fmt.Fprintln(tw, strings.Join(f, "\t"))
		}
		return tw.Flush()
	}
	return fmt.Errorf("output format %q is not one of json, table, tsv, none", g.output)
}

// addGroups adds az's resourceGroup field to objects that have an ARM id.
func addGroups(v any) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			addGroups(e)
		}
	case map[string]any:
		if _, ok := x["resourceGroup"]; ok {
			return
		}
		if id, ok := x["id"].(string); ok {
			if pid, err := arm.ParseID(id); err == nil && pid.ResourceGroup != "" {
				x["resourceGroup"] = pid.ResourceGroup
			}
		}
	}
}

// defaultColumns shows the scalar top-level fields az would show.
func defaultColumns(rows []map[string]any) []column {
	seen := map[string]bool{}
	var keys []string
	for _, r := range rows {
		for k, v := range r {
			switch v.(type) {
			case map[string]any, []any:
				continue
			}
			if k == "id" || seen[k] {
				continue
			}
			seen[k] = true
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var cols []column
	for _, k := range keys {
		cols = append(cols, col(strings.ToUpper(k[:1])+k[1:], k))
	}
	return cols
}

// ctxOf returns the command's context.
func ctxOf(cmd *cobra.Command) context.Context { return cmd.Context() }
