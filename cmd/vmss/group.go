package main

import (
	"net/http"
	"os"

	"github.com/spf13/cobra"
)

func groupCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "group", Short: "Resource groups (az group)"}
	var loc string
	create := &cobra.Command{Use: "create", Short: "Create a resource group", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out map[string]any
			body := map[string]any{}
			if loc != "" {
				body["location"] = loc
			}
			if _, err := g.client().Do(ctxOf(cmd), http.MethodPut, "/subscriptions/"+g.client().Subscription+"/resourceGroups/"+nameFlag(cmd), body, &out); err != nil {
				return err
			}
			return g.print(os.Stdout, out, nil)
		}}
	create.Flags().StringVarP(&loc, "location", "l", "", "location")
	show := &cobra.Command{Use: "show", Short: "Show a resource group", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := g.get(ctxOf(cmd), "/subscriptions/"+g.client().Subscription+"/resourceGroups/"+nameFlag(cmd))
			if err != nil {
				return err
			}
			return g.print(os.Stdout, v, nil)
		}}
	var noWait bool
	del := &cobra.Command{Use: "delete", Short: "Delete a resource group and everything in it", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.send(ctxOf(cmd), http.MethodDelete, "/subscriptions/"+g.client().Subscription+"/resourceGroups/"+nameFlag(cmd), nil, nil, noWait, nil)
		}}
	del.Flags().BoolVar(&noWait, "no-wait", false, "do not wait")
	for _, x := range []*cobra.Command{create, show, del} {
		x.Flags().StringP("name", "n", "", "group name (required)")
		must(x.MarkFlagRequired("name"))
	}
	list := &cobra.Command{Use: "list", Short: "List resource groups", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := g.list(ctxOf(cmd), "/subscriptions/"+g.client().Subscription+"/resourceGroups")
			if err != nil {
				return err
			}
			return g.print(os.Stdout, v, nil)
		}}
	c.AddCommand(create, show, del, list)
	return c
}
