package template

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// benchTemplate runs Parse + Prepare + Evaluate of every resource + Outputs
// per iteration and reports templates/s and expressions/s.
func benchTemplate(b *testing.B, data []byte, params map[string]any) {
	b.ReportAllocs()
	var exprs int64
	for b.Loop() {
		tpl, err := Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		s := newFakeState()
		d, err := Prepare(context.Background(), tpl, Inputs{Params: params}, testScope(s))
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range d.Levels() {
			for _, r := range l {
				body, err := d.Evaluate(context.Background(), r)
				if err != nil {
					b.Fatal(err)
				}
				s.deploy(r, body)
			}
		}
		if _, err := d.Outputs(context.Background()); err != nil {
			b.Fatal(err)
		}
		exprs += d.evaluated.Load()
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/sec, "templates/s")
	b.ReportMetric(float64(exprs)/sec, "exprs/s")
}

// BenchmarkEvaluate measures the largest own test template (jumpbox) and,
// when present, the largest real quickstart template (ubuntu-autoscale).
func BenchmarkEvaluate(b *testing.B) {
	b.Run("testdata-jumpbox", func(b *testing.B) {
		params, err := ParseParameters(readFile(b, "jumpbox.parameters.json"))
		if err != nil {
			b.Fatal(err)
		}
		benchTemplate(b, readFile(b, "jumpbox.json"), params)
	})
	b.Run("testdata-jumpbox-evaluate-only", func(b *testing.B) {
		s := newFakeState()
		d := prepareTestdata(b, "jumpbox", s)
		deployAll(b, d, s)
		b.ReportAllocs()
		start := d.evaluated.Load()
		for b.Loop() {
			for _, r := range d.Resources() {
				if _, err := d.Evaluate(context.Background(), r); err != nil {
					b.Fatal(err)
				}
			}
		}
		sec := b.Elapsed().Seconds()
		b.ReportMetric(float64(b.N)/sec, "templates/s")
		b.ReportMetric(float64(d.evaluated.Load()-start)/sec, "exprs/s")
	})
	b.Run("shared-ubuntu-autoscale", func(b *testing.B) {
		dir := filepath.Join(sharedTemplates, "201-vmss-ubuntu-autoscale")
		data, err := os.ReadFile(filepath.Join(dir, "azuredeploy.json"))
		if err != nil {
			b.Skip("shared template not present")
		}
		_, params := loadShared(b, dir)
		benchTemplate(b, data, params)
	})
}
