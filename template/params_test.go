package template

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vmss-emulator/vmss/template/expr"
)

const paramTemplate = `{
  "parameters": {
    "name":     {"type": "string", "minLength": 2, "maxLength": 5},
    "count":    {"type": "int", "defaultValue": 2, "minValue": 1, "maxValue": 10},
    "size":     {"type": "string", "defaultValue": "small", "allowedValues": ["small", "large"]},
    "flag":     {"type": "bool", "defaultValue": false},
    "obj":      {"type": "object", "defaultValue": {"a": 1}},
    "list":     {"type": "array", "defaultValue": ["x"], "allowedValues": ["x", "y", "z"], "maxLength": 2},
    "pass":     {"type": "securestring"},
    "secret":   {"type": "secureObject", "defaultValue": {"token": "default-token-value"}},
    "derived":  {"type": "string", "defaultValue": "[concat(parameters('name'), '-', string(parameters('count')))]"},
    "where":    {"type": "string", "defaultValue": "[resourceGroup().location]"}
  },
  "resources": []
}`

func TestParameters(t *testing.T) {
	base := map[string]any{"name": "abc", "pass": "Sup3r-Secret-Pw"}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
				continue
			}
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name      string
		params    map[string]any
		overrides []string
		check     map[string]string // parameter -> compact JSON of the value
		err       string
	}{
		{name: "defaults", params: base, check: map[string]string{"count": "2", "size": `"small"`, "flag": "false", "derived": `"abc-2"`, "where": `"westus"`, "obj": `{"a":1}`}},
		{name: "file values", params: with("count", int64(7), "size", "large", "flag", true, "list", []any{"y", "z"}), check: map[string]string{"count": "7", "derived": `"abc-7"`, "list": `["y","z"]`, "flag": "true"}},
		{name: "overrides coerced", params: base, overrides: []string{"count=9", "flag=TRUE", `obj={"b":[1,2]}`, `list=["z"]`, "name=xy"}, check: map[string]string{"count": "9", "flag": "true", "obj": `{"b":[1,2]}`, "list": `["z"]`, "derived": `"xy-9"`}},
		{name: "override wins over file", params: with("count", int64(3)), overrides: []string{"count=4"}, check: map[string]string{"count": "4"}},
		{name: "override with = in value", params: base, overrides: []string{"pass=a=b=c"}, check: map[string]string{"pass": `"a=b=c"`}},
		{name: "missing required", params: map[string]any{}, err: "missing required parameters: name (string), pass (securestring); give them in the parameter file or as name=value"},
		{name: "unknown in file", params: with("cuont", int64(1)), err: `the parameter file gives "cuont", which the template does not declare (did you mean 'count'?)`},
		{name: "unknown override", params: base, overrides: []string{"sise=large"}, err: `override sise=…: the template declares no parameter "sise" (did you mean 'size'?)`},
		{name: "override without =", params: base, overrides: []string{"count"}, err: `parameter override "count" must look like name=value`},
		{name: "bad int override", params: base, overrides: []string{"count=many"}, err: `parameter "count" is an int: "many" is not an integer`},
		{name: "bad bool override", params: base, overrides: []string{"flag=yes"}, err: `parameter "flag" is a bool: give true or false, not "yes"`},
		{name: "bad json override", params: base, overrides: []string{"obj={"}, err: `parameter "obj" is an object: "{" is not valid JSON`},
		{name: "wrong file type", params: with("count", "5"), err: `parameters.count: parameter "count" is declared int but the value is a string`},
		{name: "object for array", params: with("list", map[string]any{}), err: `parameter "list" is declared array but the value is an object`},
		{name: "not allowed", params: with("size", "huge"), err: `parameters.size: parameter "size": "huge" is not an allowed value; allowed: "small", "large"`},
		{name: "array element not allowed", params: with("list", []any{"x", "w"}), err: `parameter "list": "w" is not an allowed value`},
		{name: "below minValue", params: with("count", int64(0)), err: `parameter "count": 0 is less than minValue 1`},
		{name: "above maxValue", overrides: []string{"count=11"}, params: base, err: `parameter "count": 11 is more than maxValue 10`},
		{name: "too short", params: with("name", "a"), err: `parameter "name": length 1 is less than minLength 2`},
		{name: "too long", params: with("name", "abcdef"), err: `parameter "name": length 6 is more than maxLength 5`},
		{name: "array too long", params: with("list", []any{"x", "y", "z"}), err: `parameter "list": length 3 is more than maxLength 2`},
		{name: "case-insensitive names", params: map[string]any{"NAME": "abc", "Pass": "pw-long-enough"}, check: map[string]string{"name": `"abc"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := mustPrepare(t, paramTemplate, Inputs{Params: tt.params, Overrides: tt.overrides})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]ParamValue{}
			for _, p := range d.Parameters() {
				got[p.Name] = p
			}
			for name, want := range tt.check {
				p, ok := got[name]
				if !ok {
					t.Fatalf("no parameter %s", name)
				}
				if s := marshal(p.Value); s != want {
					t.Errorf("%s = %s, want %s", name, s, want)
				}
			}
		})
	}
}

func marshal(v any) string { return expr.MarshalCompact(v) }

func TestParameterDefaultCycle(t *testing.T) {
	_, err := mustPrepare(t, `{"parameters": {
		"a": {"type": "string", "defaultValue": "[parameters('b')]"},
		"b": {"type": "string", "defaultValue": "[parameters('a')]"}}, "resources": []}`, Inputs{})
	if err == nil || !strings.Contains(err.Error(), "depends on itself") {
		t.Fatalf("got %v", err)
	}
}

func TestParseParameters(t *testing.T) {
	p, err := ParseParameters([]byte(`{"$schema": "x", "contentVersion": "1.0.0.0", "parameters": {"a": {"value": 1}, "b": {"value": {"c": [true]}}}}`))
	if err != nil || p["a"] != int64(1) || marshal(p["b"]) != `{"c":[true]}` {
		t.Fatalf("got %v, %v", p, err)
	}
	p, err = ParseParameters([]byte(`{"a": {"value": "bare"}}`))
	if err != nil || p["a"] != "bare" {
		t.Fatalf("bare form: %v, %v", p, err)
	}
	for _, tt := range []struct{ in, err string }{
		{`{"parameters": {"pw": {"reference": {"keyVault": {"id": "/x"}, "secretName": "s"}}}}`, `parameters.pw: parameter "pw" is a Key Vault reference, which is not supported: give the value directly (in the file or as pw=value)`},
		{`{"parameters": {"a": {"val": 1}}}`, `parameters.a: parameter "a" has no "value"`},
		{`{"parameters": {"a": 1}}`, `parameters.a: must be an object {"value": ...}, got int`},
		{`{"parameters": []}`, `parameters: must be an object, got array`},
		{`[1]`, `parameter file must be a JSON object`},
		{`{`, `parameter file is not valid JSON`},
	} {
		if _, err := ParseParameters([]byte(tt.in)); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: got %v, want %q", tt.in, err, tt.err)
		}
	}
}

// TestSecureValuesAreRedacted: the values of securestring and secureObject
// parameters never appear in errors or in String().
func TestSecureValuesAreRedacted(t *testing.T) {
	const pw = "Hunter2-Very-Secret"
	tpl := `{
	  "parameters": {
	    "pw": {"type": "securestring", "allowedValues": ["other-value"]},
	    "obj": {"type": "secureObject"}
	  },
	  "resources": []}`
	_, err := mustPrepare(t, tpl, Inputs{Overrides: []string{"pw=" + pw, `obj={"k":"Obj-Secret-Value"}`}})
	if err == nil || strings.Contains(err.Error(), pw) || !strings.Contains(err.Error(), "the given value is not an allowed value") {
		t.Fatalf("allowedValues error %q must not show the value", err)
	}

	tpl = `{
	  "parameters": {"pw": {"type": "securestring"}, "obj": {"type": "secureObject"}, "short": {"type": "securestring"}},
	  "variables": {"n": "[int(parameters('pw'))]"},
	  "resources": []}`
	_, err = mustPrepare(t, tpl, Inputs{Params: map[string]any{"pw": pw, "obj": map[string]any{"k": "Obj-Secret-Value"}, "short": "ab"}})
	if err == nil || strings.Contains(err.Error(), pw) || !strings.Contains(err.Error(), "cannot convert '***' to an integer") {
		t.Fatalf("error %q must redact the password", err)
	}
	var te *Error
	if !errors.As(err, &te) || strings.Contains(te.Expr, pw) || te.Path != "variables.n" {
		t.Fatalf("structured error %+v", te)
	}

	tpl = `{
	  "parameters": {"pw": {"type": "securestring"}, "obj": {"type": "secureObject"}},
	  "variables": {"n": "[int(string(parameters('obj')))]", "m": "[json(concat('{', parameters('obj').k))]"},
	  "resources": []}`
	_, err = mustPrepare(t, tpl, Inputs{Params: map[string]any{"pw": pw, "obj": map[string]any{"k": "Obj-Secret-Value"}}})
	if err == nil || strings.Contains(err.Error(), "Obj-Secret-Value") {
		t.Fatalf("error %q shows a secureObject value", err)
	}

	d, err := mustPrepare(t, `{"parameters": {"pw": {"type": "securestring"}, "name": {"type": "string"}}, "resources": []}`,
		Inputs{Overrides: []string{"pw=" + pw, "name=visible"}})
	if err != nil {
		t.Fatal(err)
	}
	var shown []string
	for _, p := range d.Parameters() {
		shown = append(shown, p.String())
	}
	if got := strings.Join(shown, "; "); got != `name (string) = "visible"; pw (securestring) = ***` {
		t.Fatalf("String() = %s", got)
	}
	if s := fmt.Sprintf("%v %+v %#v %s", d.Parameters(), d.Parameters(), d.Parameters(), d.Parameters()); strings.Contains(s, pw) {
		t.Fatalf("formatting shows the password: %s", s)
	}

	// A bad override of a secure object does not echo the value.
	_, err = mustPrepare(t, `{"parameters": {"obj": {"type": "secureObject"}}, "resources": []}`, Inputs{Overrides: []string{"obj={not json " + pw}})
	if err == nil || strings.Contains(err.Error(), pw) {
		t.Fatalf("error %q shows the override", err)
	}
}

func TestShortSecretDoesNotGarbleMessages(t *testing.T) {
	_, err := mustPrepare(t, `{"parameters": {"p": {"type": "securestring"}}, "variables": {"v": "[parameters('nope')]"}, "resources": []}`,
		Inputs{Overrides: []string{"p=e"}})
	if err == nil || !strings.Contains(err.Error(), "no parameter 'nope'") {
		t.Fatalf("got %v", err)
	}
	_, err = mustPrepare(t, `{"parameters": {"p": {"type": "securestring"}}, "variables": {"v": "[int(parameters('p'))]"}, "resources": []}`,
		Inputs{Overrides: []string{"p=e"}})
	if err == nil || !strings.Contains(err.Error(), "cannot convert '***'") {
		t.Fatalf("got %v", err)
	}
}

func TestPrepareNeedsScope(t *testing.T) {
	tpl, err := Parse([]byte(`{"resources": []}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Prepare(context.Background(), tpl, Inputs{}, Scope{})
	if err == nil || !strings.Contains(err.Error(), "resource group name is required") || !strings.Contains(err.Error(), "location is required") {
		t.Fatalf("got %v", err)
	}
}
