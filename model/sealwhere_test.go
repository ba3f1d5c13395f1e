package model

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// Sealing only the values that mention a sealed key gives what sealing
// the whole document gave: the same values sealed (as many, at the same
// places), the rest unchanged, and both unseal to the original.
func TestSealWhereSameAsWholeDocument(t *testing.T) {
	s, err := loadSealer(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	doc := `{"version":1,"virtualMachineScaleSets":{"a":{"model":{"properties":{"virtualMachineProfile":{
	  "osProfile":{"adminUsername":"u","adminPassword":"Passw0rd!x","customData":"Y2xvdWQ="},
	  "extensionProfile":{"extensions":[{"name":"x","properties":{"settings":{"n":1},"protectedSettings":{"commandToExecute":"s3cr3t","big":12345678901234567890}}},
	    {"name":"y","properties":{"protectedSettings":null}}]}}}},
	  "instances":{"0":{"netns":"p-a-0","note":"mentions \"protectedSettings\" in a string","n":1.50}}}},
	"deployments":{"d":{"template":{"resources":[[{"adminPassword":{"value":"[parameters('p')]"}}],"protectedSettings"]},
	  "parameters":{"p":{"value":"pw-param"},"adminPa\u0073sword":{"value":"esc-secret"},"customData":{"value":{"nested":["adminPassword"]}}}}},
	"netns":{"p-a-0":"a/0"},"seq":3}`
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(doc)); err != nil {
		t.Fatal(err)
	}
	data := compact.Bytes()
	whole, err := s.transform(data, s.sealValue)
	if err != nil {
		t.Fatal(err)
	}
	where, err := s.transformWhere(data, s.sealValue)
	if err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{"Passw0rd!x", "Y2xvdWQ=", "s3cr3t", "esc-secret", "[parameters('p')]"} {
		if strings.Contains(string(where), clear) {
			t.Errorf("sealed document has %q in clear: %s", clear, where)
		}
		if !strings.Contains(string(data), clear) {
			t.Errorf("positive control: the document lacks %q", clear)
		}
	}
	if a, b := strings.Count(string(where), `"`+sealedKey+`"`), strings.Count(string(whole), `"`+sealedKey+`"`); a != b || a != 6 {
		t.Errorf("%d values sealed, whole-document sealing sealed %d, want 6", a, b)
	}
	// With the sealed values masked, both are the same document.
	mask := func(b []byte) any {
		t.Helper()
		var v any
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		var walk func(v any) any
		walk = func(v any) any {
			switch x := v.(type) {
			case map[string]any:
				if _, ok := x[sealedKey]; ok && len(x) == 1 {
					return "sealed"
				}
				for k, c := range x {
					x[k] = walk(c)
				}
			case []any:
				for i, c := range x {
					x[i] = walk(c)
				}
			}
			return v
		}
		return walk(v)
	}
	if a, b := mask(where), mask(whole); !reflect.DeepEqual(a, b) {
		t.Errorf("sealed where mentioned:\n%v\nsealed whole:\n%v", a, b)
	}
	// Not compact (white space between tokens): the same values sealed.
	spaced, err := s.transformWhere([]byte(doc), s.sealValue)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mask(spaced), mask(whole); !reflect.DeepEqual(a, b) {
		t.Errorf("sealed where mentioned, with white space:\n%v\nsealed whole:\n%v", a, b)
	}
	for name, sealed := range map[string][]byte{"where": where, "whole": whole, "spaced": spaced} {
		back, err := s.unseal(sealed)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := mask(back), mask(data); !reflect.DeepEqual(a, b) {
			t.Errorf("%s: unsealed\n%s\nwant\n%s", name, back, data)
		}
	}
	// A document that mentions no sealed key is returned as it is.
	plain := []byte(`{"b":1,"a":2}`)
	if got, err := s.seal(plain); err != nil || string(got) != string(plain) {
		t.Errorf("seal of a document without sealed keys = %s, %v", got, err)
	}
}

// BenchmarkSealState seals a state of one scale set of 4,096 instances
// with protected settings, looking only where they are (where) or through
// the whole document (whole).
func BenchmarkSealState(b *testing.B) {
	s, err := loadSealer(b.TempDir(), true)
	if err != nil {
		b.Fatal(err)
	}
	insts := map[string]any{}
	for i := range 4096 {
		insts[strings.Repeat("i", 1)+string(rune('a'+i%26))+strings.Repeat("x", i%7)+"-"+json.Number(rune('0'+i%10)).String()+string(rune(i))] = map[string]any{
			"netns": "p-rg-web_0", "privateIpAddress": "10.0.0.4", "buildGeneration": 1, "power": "running", "modelGeneration": 1}
	}
	data, err := json.Marshal(map[string]any{"virtualMachineScaleSets": map[string]any{"web": map[string]any{
		"model":     map[string]any{"properties": map[string]any{"osProfile": map[string]any{"adminPassword": "Passw0rd!x"}}},
		"instances": insts}}})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		fn   func([]byte, func(any) (any, error)) ([]byte, error)
	}{{"where", s.transformWhere}, {"whole", s.transform}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := c.fn(data, s.sealValue); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
