package template

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// FuzzTemplate runs whole templates through Parse, Prepare, Evaluate and
// Outputs; none of them may panic. Seeds are the testdata templates.
func FuzzTemplate(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, file := range files {
		f.Add(readFile(f, filepath.Base(file)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		start := time.Now()
		defer func() {
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("took %v", d)
			}
		}()
		tpl, err := Parse(data)
		if err != nil {
			return
		}
		params := map[string]any{}
		for name, p := range tpl.Parameters {
			switch p.Type {
			case "int":
				params[name] = int64(2)
			case "bool":
				params[name] = true
			case "object", "secureobject":
				params[name] = map[string]any{"key": "v"}
			case "array":
				params[name] = []any{"a"}
			default:
				params[name] = "name1"
			}
		}
		s := newFakeState()
		d, err := Prepare(context.Background(), tpl, Inputs{Params: params}, testScope(s))
		if err != nil {
			return
		}
		for _, l := range d.Levels() {
			for _, r := range l {
				if b, err := d.Evaluate(context.Background(), r); err == nil {
					s.deploy(r, b)
				}
			}
		}
		_, _ = d.Outputs(context.Background())
	})
}
