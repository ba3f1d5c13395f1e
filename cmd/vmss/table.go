package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header []string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header)
	var rules []string
	for _, h := range header {
		rules = append(rules, strings.Repeat("-", len(h)))
	}
	t.row(rules)
	return t
}

func (t *table) row(cells []string) { fmt.Fprintln(t.tw, strings.Join(cells, "\t")) }

func (t *table) flush() error { return t.tw.Flush() }
