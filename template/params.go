package template

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/vmss-emulator/vmss/template/expr"
)

// ParseParameters reads a parameter file: {"parameters": {"name": {"value":
// ...}}} (the deploymentParameters schema) or the bare {"name": {"value":
// ...}} form. Key Vault references are refused.
func ParseParameters(data []byte) (map[string]any, error) {
	v, err := expr.ParseJSON(data)
	if err != nil {
		return nil, fmt.Errorf("parameter file is not valid JSON: %w", err)
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("parameter file must be a JSON object, got %s", expr.TypeName(v))
	}
	entries := root
	prefix := ""
	if ps, ok := expr.Lookup(root, "parameters"); ok {
		m, ok := ps.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("parameters: must be an object, got %s", expr.TypeName(ps))
		}
		entries, prefix = m, "parameters"
	}
	out := map[string]any{}
	var errs []error
	for _, name := range expr.Keys(entries) {
		if strings.HasPrefix(name, "$") || (prefix == "" && strings.EqualFold(name, "contentVersion")) {
			continue
		}
		path := joinPath(prefix, name)
		e, ok := entries[name].(map[string]any)
		if !ok {
			errs = append(errs, atPath(path, fmt.Errorf("must be an object {\"value\": ...}, got %s", expr.TypeName(entries[name]))))
			continue
		}
		if field(e, "reference") != nil {
			errs = append(errs, atPath(path, fmt.Errorf("parameter %q is a Key Vault reference, which is not supported: give the value directly (in the file or as %s=value)", name, name)))
			continue
		}
		val, ok := expr.Lookup(e, "value")
		if !ok {
			errs = append(errs, atPath(path, fmt.Errorf("parameter %q has no \"value\"", name)))
			continue
		}
		out[name] = val
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// ParamValue is a resolved parameter.
type ParamValue struct {
	Name  string
	Type  string
	Value any
	// Secure is true for securestring and secureObject parameters.
	Secure bool
	// Source is where the value came from: "override", "file" or "default".
	Source string
}

// String shows the parameter with a secure value replaced by ***.
func (p ParamValue) String() string {
	v := "***"
	if !p.Secure {
		v = expr.MarshalCompact(p.Value)
	}
	return fmt.Sprintf("%s (%s) = %s", p.Name, p.Type, v)
}

// GoString keeps %#v from showing a secure value.
func (p ParamValue) GoString() string { return "template.ParamValue{" + p.String() + "}" }

// parseOverride splits "name=value".
func parseOverride(s string) (string, string, error) {
	k, v, ok := strings.Cut(s, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return "", "", fmt.Errorf("parameter override %q must look like name=value", shortenSecret(s))
	}
	return k, v, nil
}

// shortenSecret shows only the part of an override before '=' (the value
// may be secret and its parameter is unknown at that point).
func shortenSecret(s string) string {
	if k, _, ok := strings.Cut(s, "="); ok {
		return k + "=…"
	}
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// coerceOverride converts a name=value string to the declared type.
func coerceOverride(p *Parameter, s string) (any, error) {
	switch p.Type {
	case "string", "securestring":
		return s, nil
	case "int":
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parameter %q is an int: %q is not an integer", p.Name, s)
		}
		return n, nil
	case "bool":
		b, err := Bool(s)
		if err != nil {
			return nil, fmt.Errorf("parameter %q is a bool: give true or false, not %q", p.Name, s)
		}
		return b, nil
	default: // object, secureobject, array
		v, err := expr.ParseJSON([]byte(s))
		if err != nil {
			if p.Secure() {
				return nil, fmt.Errorf("parameter %q is a %s: its value is not valid JSON", p.Name, p.Type)
			}
			return nil, fmt.Errorf("parameter %q is an %s: %q is not valid JSON: %v", p.Name, p.Type, s, err)
		}
		return v, nil
	}
}

// hasType reports whether v is of a declared parameter or output type
// (lower case); known is false for a type that does not exist.
func hasType(typ string, v any) (ok, known bool) {
	switch typ {
	case "string", "securestring":
		_, ok = v.(string)
	case "int":
		_, err := intValue(v)
		ok = err == nil
	case "bool":
		_, ok = v.(bool)
	case "object", "secureobject":
		_, ok = v.(map[string]any)
	case "array":
		_, ok = v.([]any)
	default:
		return false, false
	}
	return ok, true
}

// checkType verifies v against the declared type.
func checkType(p *Parameter, v any) error {
	if ok, _ := hasType(p.Type, v); !ok {
		return fmt.Errorf("parameter %q is declared %s but the value is %s", p.Name, p.Type, a(expr.TypeName(v)))
	}
	return nil
}

func a(word string) string {
	if strings.ContainsAny(word[:1], "aeiou") {
		return "an " + word
	}
	return "a " + word
}

// intValue accepts only JSON integers (and integral floats).
func intValue(v any) (int64, error) {
	switch v.(type) {
	case int64, float64:
		return Int(v)
	}
	return 0, fmt.Errorf("not an integer")
}

// validate checks allowedValues and the bounds.
func validate(p *Parameter, v any) error {
	show := func(x any) string {
		if p.Secure() {
			return "the given value"
		}
		return expr.MarshalCompact(x)
	}
	if len(p.AllowedValues) > 0 {
		check := []any{v}
		if arr, ok := v.([]any); ok && p.Type == "array" {
			check = arr
		}
		for _, c := range check {
			found := false
			for _, av := range p.AllowedValues {
				found = found || expr.Equal(av, c)
			}
			if !found {
				allowed := make([]string, len(p.AllowedValues))
				for i, av := range p.AllowedValues {
					allowed[i] = expr.MarshalCompact(av)
				}
				return fmt.Errorf("parameter %q: %s is not an allowed value; allowed: %s", p.Name, show(c), strings.Join(allowed, ", "))
			}
		}
	}
	if n, err := intValue(v); err == nil && p.Type == "int" {
		if p.MinValue != nil && n < *p.MinValue {
			return fmt.Errorf("parameter %q: %d is less than minValue %d", p.Name, n, *p.MinValue)
		}
		if p.MaxValue != nil && n > *p.MaxValue {
			return fmt.Errorf("parameter %q: %d is more than maxValue %d", p.Name, n, *p.MaxValue)
		}
	}
	var l int64 = -1
	switch x := v.(type) {
	case string:
		l = int64(len([]rune(x)))
	case []any:
		l = int64(len(x))
	}
	if l >= 0 {
		if p.MinLength != nil && l < *p.MinLength {
			return fmt.Errorf("parameter %q: length %d is less than minLength %d", p.Name, l, *p.MinLength)
		}
		if p.MaxLength != nil && l > *p.MaxLength {
			return fmt.Errorf("parameter %q: length %d is more than maxLength %d", p.Name, l, *p.MaxLength)
		}
	}
	return nil
}

// resolveParams fixes every parameter's value: override, then file, then
// default. Problems are collected and returned together.
func (d *Deployment) resolveParams(ctx context.Context, in Inputs) error {
	t := d.tpl
	var errs []error
	given := map[string]any{}
	source := map[string]string{}
	declared := t.ParameterNames()
	lookupDecl := func(name string) *Parameter {
		if p, ok := t.Parameters[name]; ok {
			return p
		}
		for _, n := range declared {
			if strings.EqualFold(n, name) {
				return t.Parameters[n]
			}
		}
		return nil
	}
	for _, name := range expr.Keys(in.Params) {
		p := lookupDecl(name)
		if p == nil {
			errs = append(errs, fmt.Errorf("the parameter file gives %q, which the template does not declare%s", name, didYouMean(name, declared)))
			continue
		}
		given[p.Name], source[p.Name] = in.Params[name], "file"
	}
	for _, o := range in.Overrides {
		name, val, err := parseOverride(o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p := lookupDecl(name)
		if p == nil {
			errs = append(errs, fmt.Errorf("override %s=…: the template declares no parameter %q%s", name, name, didYouMean(name, declared)))
			continue
		}
		if p.Secure() {
			d.red.add(val)
		}
		v, err := coerceOverride(p, val)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		given[p.Name], source[p.Name] = v, "override"
	}
	// Secrets first, so that no later message can show them.
	for name, v := range given {
		if t.Parameters[name].Secure() {
			d.red.add(v)
		}
	}
	var missing []string
	for _, name := range declared {
		p := t.Parameters[name]
		if _, ok := given[name]; !ok && !p.HasDefault {
			missing = append(missing, fmt.Sprintf("%s (%s)", name, p.Type))
		}
	}
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("missing required parameters: %s; give them in the parameter file or as name=value", strings.Join(missing, ", ")))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	d.given, d.source = given, source
	for _, name := range declared {
		if _, err := d.param(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// param returns a parameter's value, resolving it (and its default
// expression) on first use.
func (d *Deployment) param(ctx context.Context, name string) (any, error) {
	p, ok := d.tpl.Parameters[name]
	if !ok {
		for n, q := range d.tpl.Parameters {
			if strings.EqualFold(n, name) {
				p, ok = q, true
			}
		}
	}
	if !ok {
		return nil, fmt.Errorf("no parameter '%s'%s", name, didYouMean(name, d.tpl.ParameterNames()))
	}
	if pv, ok := d.params[p.Name]; ok {
		return pv.Value, nil
	}
	if d.resolving[p.Name] {
		return nil, fmt.Errorf("parameter '%s' depends on itself through its default value", p.Name)
	}
	d.resolving[p.Name] = true
	defer delete(d.resolving, p.Name)
	v, ok := d.given[p.Name]
	src := d.source[p.Name]
	path := p.path
	if !ok {
		env := &env{d: d, kind: kindParamDefault}
		var err error
		v, err = d.evalValue(ctx, env, p.DefaultValue, joinPath(path, "defaultValue"))
		if err != nil {
			return nil, err
		}
		src, path = "default", joinPath(path, "defaultValue")
	}
	if p.Secure() {
		d.red.add(v)
	}
	if err := checkType(p, v); err != nil {
		return nil, atPath(path, err)
	}
	if p.Type == "int" {
		v, _ = intValue(v)
	}
	if err := validate(p, v); err != nil {
		return nil, atPath(path, err)
	}
	d.params[p.Name] = &ParamValue{Name: p.Name, Type: p.Type, Value: v, Secure: p.Secure(), Source: src}
	return v, nil
}

// Parameters returns the resolved parameters sorted by name.
func (d *Deployment) Parameters() []ParamValue {
	out := make([]ParamValue, 0, len(d.params))
	for _, p := range d.params {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
