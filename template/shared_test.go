package template

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// sharedTemplates is where the project keeps real Azure quickstart
// templates for acceptance runs (outside this repository).
const sharedTemplates = "../../shared/templates"

var genUnique = regexp.MustCompile(`GEN-UNIQUE(?:-(\d+))?`)

// fillPlaceholders replaces GEN-UNIQUE[-N] by a unique lowercase name (N
// characters, default 18) and GEN-PASSWORD by a password.
func fillPlaceholders(s string, seed string) string {
	s = genUnique.ReplaceAllStringFunc(s, func(m string) string {
		n := 18
		if sub := genUnique.FindStringSubmatch(m); sub[1] != "" {
			n, _ = strconv.Atoi(sub[1])
		}
		name := "v" + strings.Repeat(UniqueStringForTest(seed), 5)
		return name[:min(n, len(name))]
	})
	return strings.ReplaceAll(s, "GEN-PASSWORD", "Gen-Passw0rd-"+seed)
}

// UniqueStringForTest gives a deterministic lowercase token.
func UniqueStringForTest(seed string) string {
	return strings.ToLower(fmt.Sprintf("%x", []byte(seed)))[:8]
}

// loadShared parses a shared template and its parameters; parameters a
// template needs but has no file for get generated values.
func loadShared(t testing.TB, dir string) (*Template, map[string]any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "azuredeploy.json"))
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	params := map[string]any{}
	if pd, err := os.ReadFile(filepath.Join(dir, "azuredeploy.parameters.json")); err == nil {
		if params, err = ParseParameters([]byte(fillPlaceholders(string(pd), filepath.Base(dir)))); err != nil {
			t.Fatalf("ParseParameters: %v", err)
		}
	}
	for name, p := range tpl.Parameters {
		if _, ok := params[name]; ok || p.HasDefault {
			continue
		}
		switch {
		case p.Type == "securestring":
			params[name] = fillPlaceholders("GEN-PASSWORD", name)
		case p.Type == "int":
			params[name] = int64(3)
		case strings.Contains(strings.ToLower(name), "count"):
			params[name] = "3"
		default:
			params[name] = fillPlaceholders("GEN-UNIQUE-12", name)
		}
	}
	return tpl, params
}

// TestSharedTemplates prepares, deploys (into a fake state) and evaluates
// every real quickstart template kept in shared/templates.
func TestSharedTemplates(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join(sharedTemplates, "*"))
	if len(dirs) == 0 {
		t.Skip("no shared templates at " + sharedTemplates)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			tpl, params := loadShared(t, dir)
			s := newFakeState()
			d, err := Prepare(context.Background(), tpl, Inputs{Params: params}, testScope(s))
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			n := 0
			for _, l := range d.Levels() {
				n += len(l)
			}
			if n == 0 || n != len(d.Resources()) {
				t.Fatalf("%d resources in levels of %d", n, len(d.Resources()))
			}
			bodies := deployAll(t, d, s)
			sets := 0
			for _, r := range d.Resources() {
				if r.Type != "Microsoft.Compute/virtualMachineScaleSets" {
					continue
				}
				sets++
				c, err := Int(get(bodies[r.Name], "sku", "capacity"))
				if err != nil || c <= 0 {
					t.Errorf("%s: capacity %v: %v", r, get(bodies[r.Name], "sku", "capacity"), err)
				}
				for _, dep := range r.DependsOn {
					dr, err := d.Lookup(dep)
					if err != nil || dr.Level >= r.Level {
						t.Errorf("%s depends on %s at level %d", r, dep, dr.Level)
					}
				}
			}
			if sets != 1 {
				t.Errorf("%d scale sets, want 1", sets)
			}
			if _, err := d.Outputs(context.Background()); err != nil {
				t.Fatalf("Outputs: %v", err)
			}
			t.Logf("%d resources in %d levels, %d expressions evaluated", n, len(d.Levels()), d.evaluated.Load())
		})
	}
}
