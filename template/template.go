package template

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/vmss-emulator/vmss/template/expr"
)

// Template is a parsed ARM template. It is immutable after Parse and safe to
// Prepare many times, concurrently.
type Template struct {
	Schema         string
	ContentVersion string
	// Parameters are the declared parameters by name.
	Parameters map[string]*Parameter

	variables map[string]any // raw, without the "copy" key
	varCopies []copySpec     // variables' "copy" array
	resources []*rawResource // flattened, parents before children
	outputs   map[string]map[string]any
	exprs     map[string]*expr.Expr // every string of the template, compiled
	numExprs  int                   // how many of them are expressions
}

// Parameter is one declared parameter.
type Parameter struct {
	Name string
	// Type is lower case: string, securestring, int, bool, object, secureobject or array.
	Type          string
	DefaultValue  any
	HasDefault    bool
	AllowedValues []any
	MinValue      *int64
	MaxValue      *int64
	MinLength     *int64
	MaxLength     *int64
	Description   string
	path          string
}

// Secure reports whether the parameter's value must be kept out of messages.
func (p *Parameter) Secure() bool { return p.Type == "securestring" || p.Type == "secureobject" }

var paramTypes = []string{"string", "securestring", "int", "bool", "object", "secureobject", "array"}

// copySpec is a "copy" element: of a resource, a property, a variable or an output.
type copySpec struct {
	name      string
	count     any // raw value (int or expression string)
	input     any // raw input (property and variable copies)
	mode      string
	batchSize any
	path      string
}

type rawResource struct {
	path   string
	body   map[string]any
	parent *rawResource
	copy   *copySpec
}

// Parse reads a template. It checks the structure (types of the sections,
// required fields of resources and parameters) and the syntax of every
// expression, reporting each problem with its JSON path.
func Parse(data []byte) (*Template, error) {
	v, err := expr.ParseJSON(data)
	if err != nil {
		return nil, fmt.Errorf("template is not valid JSON: %w", err)
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("template must be a JSON object, got %s", expr.TypeName(v))
	}
	t := &Template{Parameters: map[string]*Parameter{}, variables: map[string]any{}, outputs: map[string]map[string]any{}, exprs: map[string]*expr.Expr{}}
	var errs problems
	t.Schema, _ = field(root, "$schema").(string)
	t.ContentVersion, _ = field(root, "contentVersion").(string)
	if lv, ok := field(root, "languageVersion").(string); ok {
		errs.fail("languageVersion", "languageVersion %q (symbolic names) is not supported: use the classic template format with a resources array", lv)
	}
	if f := field(root, "functions"); f != nil {
		errs.fail("functions", "user-defined functions are not supported")
	}

	t.parseParameters(section(root, "parameters", &errs), &errs)
	t.parseVariables(section(root, "variables", &errs), &errs)
	t.parseResources(field(root, "resources"), &errs)
	t.parseOutputs(section(root, "outputs", &errs), &errs)

	errs = append(errs, t.compileAll("", root)...)
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, (&redactor{}).public(errors.Join(errs...))
	}
	return t, nil
}

// problems collects what is wrong with a template, each at its JSON path.
type problems []error

func (p *problems) add(err error) { *p = append(*p, err) }

func (p *problems) fail(path, format string, args ...any) {
	p.add(atPath(path, fmt.Errorf(format, args...)))
}

// section answers the object section name of root (nil if absent), recording
// a problem if it is something else.
func section(root map[string]any, name string, errs *problems) map[string]any {
	v := field(root, name)
	m, ok := v.(map[string]any)
	if !ok && v != nil {
		errs.fail(name, "must be an object, got %s", expr.TypeName(v))
	}
	return m
}

// parseParameters reads the parameters section m.
func (t *Template) parseParameters(m map[string]any, errs *problems) {
	for name, pv := range m {
		p, err := parseParameter(name, pv)
		if err != nil {
			errs.add(err)
			continue
		}
		t.Parameters[name] = p
	}
}

// parseVariables reads the variables section m.
func (t *Template) parseVariables(m map[string]any, errs *problems) {
	for k, v := range m {
		if strings.EqualFold(k, "copy") {
			cs, err := parseCopyArray(joinPath("variables", k), v)
			if err != nil {
				errs.add(err)
			}
			t.varCopies = cs
			continue
		}
		t.variables[k] = v
	}
}

// parseResources reads the resources array rs.
func (t *Template) parseResources(rs any, errs *problems) {
	switch rs := rs.(type) {
	case nil:
	case []any:
		for i, r := range rs {
			if err := t.addResource(indexPath("resources", i), r, nil); err != nil {
				errs.add(err)
			}
		}
	case map[string]any:
		errs.fail("resources", "resources as an object (symbolic names) are not supported: use an array")
	default:
		errs.fail("resources", "must be an array, got %s", expr.TypeName(rs))
	}
}

// parseOutputs reads the outputs section m.
func (t *Template) parseOutputs(m map[string]any, errs *problems) {
	for name, ov := range m {
		o, ok := ov.(map[string]any)
		path := joinPath("outputs", name)
		if !ok {
			errs.fail(path, "must be an object with type and value, got %s", expr.TypeName(ov))
			continue
		}
		if _, ok := field(o, "type").(string); !ok {
			errs.fail(path, "needs a \"type\" (string, int, bool, object, array, securestring or secureObject)")
		}
		if field(o, "value") == nil && field(o, "copy") == nil {
			errs.fail(path, "needs a \"value\"")
		}
		t.outputs[name] = o
	}
}

func sortErrors(errs []error) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
}

// field reads key from m, case-insensitively as ARM does.
func field(m map[string]any, key string) any {
	v, _ := expr.Lookup(m, key)
	return v
}

func parseParameter(name string, v any) (*Parameter, error) {
	path := joinPath("parameters", name)
	m, ok := v.(map[string]any)
	if !ok {
		return nil, atPath(path, fmt.Errorf("must be an object with a type, got %s", expr.TypeName(v)))
	}
	typ, _ := field(m, "type").(string)
	p := &Parameter{Name: name, Type: strings.ToLower(typ), path: path}
	found := false
	for _, pt := range paramTypes {
		found = found || pt == p.Type
	}
	if !found {
		return nil, atPath(joinPath(path, "type"), fmt.Errorf("type %q is not one of string, securestring, int, bool, object, secureObject, array", typ))
	}
	if dv, ok := expr.Lookup(m, "defaultValue"); ok {
		p.DefaultValue, p.HasDefault = dv, true
	}
	if av := field(m, "allowedValues"); av != nil {
		arr, ok := av.([]any)
		if !ok {
			return nil, atPath(joinPath(path, "allowedValues"), fmt.Errorf("must be an array, got %s", expr.TypeName(av)))
		}
		p.AllowedValues = arr
	}
	for key, dst := range map[string]**int64{"minValue": &p.MinValue, "maxValue": &p.MaxValue, "minLength": &p.MinLength, "maxLength": &p.MaxLength} {
		if x := field(m, key); x != nil {
			n, err := Int(x)
			if err != nil {
				return nil, atPath(joinPath(path, key), fmt.Errorf("must be an integer, got %s", expr.TypeName(x)))
			}
			*dst = &n
		}
	}
	if md, ok := field(m, "metadata").(map[string]any); ok {
		p.Description, _ = field(md, "description").(string)
	}
	return p, nil
}

func parseCopyArray(path string, v any) ([]copySpec, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, atPath(path, fmt.Errorf("must be an array of {name, count, input}, got %s", expr.TypeName(v)))
	}
	var out []copySpec
	for i, e := range arr {
		p := indexPath(path, i)
		m, ok := e.(map[string]any)
		if !ok {
			return nil, atPath(p, fmt.Errorf("must be an object {name, count, input}, got %s", expr.TypeName(e)))
		}
		name, _ := field(m, "name").(string)
		if name == "" {
			return nil, atPath(joinPath(p, "name"), errors.New("copy needs a name"))
		}
		if field(m, "count") == nil {
			return nil, atPath(joinPath(p, "count"), fmt.Errorf("copy %q needs a count", name))
		}
		in, ok := expr.Lookup(m, "input")
		if !ok {
			return nil, atPath(joinPath(p, "input"), fmt.Errorf("copy %q needs an input", name))
		}
		out = append(out, copySpec{name: name, count: field(m, "count"), input: in, path: p})
	}
	return out, nil
}

// isCopyArray reports whether v looks like a property/variable "copy" array.
func isCopyArray(v any) bool {
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return false
	}
	for _, e := range arr {
		m, ok := e.(map[string]any)
		if !ok || field(m, "name") == nil || field(m, "count") == nil {
			return false
		}
		if _, ok := expr.Lookup(m, "input"); !ok {
			return false
		}
	}
	return true
}

func (t *Template) addResource(path string, v any, parent *rawResource) error {
	m, ok := v.(map[string]any)
	if !ok {
		return atPath(path, fmt.Errorf("must be an object, got %s", expr.TypeName(v)))
	}
	var errs []error
	for _, key := range []string{"type", "name", "apiVersion"} {
		s, ok := field(m, key).(string)
		if !ok || s == "" {
			errs = append(errs, atPath(joinPath(path, key), fmt.Errorf("a resource needs a %q string", key)))
		}
	}
	if typ, _ := field(m, "type").(string); strings.EqualFold(strings.TrimSuffix(typ, "/"), "Microsoft.Resources/deployments") {
		props, _ := field(m, "properties").(map[string]any)
		if props != nil && field(props, "templateLink") != nil {
			errs = append(errs, atPath(joinPath(joinPath(path, "properties"), "templateLink"), errors.New("linked templates are not supported: put the template inline in the main template instead")))
		} else {
			errs = append(errs, atPath(path, errors.New("nested deployments (Microsoft.Resources/deployments) are not supported: move their resources into the main template")))
		}
	}
	r := &rawResource{path: path, body: m, parent: parent}
	if c := field(m, "copy"); c != nil {
		cm, ok := c.(map[string]any)
		cpath := joinPath(path, "copy")
		switch {
		case !ok:
			errs = append(errs, atPath(cpath, fmt.Errorf("must be an object {name, count}, got %s", expr.TypeName(c))))
		case field(cm, "name") == nil || field(cm, "count") == nil:
			errs = append(errs, atPath(cpath, errors.New("a resource copy needs a name and a count")))
		default:
			name, _ := field(cm, "name").(string)
			mode, _ := field(cm, "mode").(string)
			if mode != "" && !strings.EqualFold(mode, "serial") && !strings.EqualFold(mode, "parallel") {
				errs = append(errs, atPath(joinPath(cpath, "mode"), fmt.Errorf("mode %q must be serial or parallel", mode)))
			}
			if name == "" {
				errs = append(errs, atPath(joinPath(cpath, "name"), errors.New("must be a non-empty string")))
			}
			r.copy = &copySpec{name: name, count: field(cm, "count"), mode: strings.ToLower(mode), batchSize: field(cm, "batchSize"), path: cpath}
		}
	}
	if d := field(m, "dependsOn"); d != nil {
		if _, ok := d.([]any); !ok {
			errs = append(errs, atPath(joinPath(path, "dependsOn"), fmt.Errorf("must be an array, got %s", expr.TypeName(d))))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	t.resources = append(t.resources, r)
	if kids := field(m, "resources"); kids != nil {
		arr, ok := kids.([]any)
		if !ok {
			return atPath(joinPath(path, "resources"), fmt.Errorf("must be an array, got %s", expr.TypeName(kids)))
		}
		for i, k := range arr {
			if err := t.addResource(indexPath(joinPath(path, "resources"), i), k, r); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// compileAll compiles every string in v (keys excluded) into t.exprs.
func (t *Template) compileAll(path string, v any) []error {
	switch x := v.(type) {
	case string:
		if _, ok := t.exprs[x]; ok {
			return nil
		}
		e, err := expr.Compile(x)
		if err != nil {
			return []error{atPath(path, err)}
		}
		t.exprs[x] = e
		if e.Root != nil {
			t.numExprs++
		}
	case []any:
		var errs []error
		for i, e := range x {
			errs = append(errs, t.compileAll(indexPath(path, i), e)...)
		}
		return errs
	case map[string]any:
		var errs []error
		for _, k := range expr.Keys(x) {
			errs = append(errs, t.compileAll(joinPath(path, k), x[k])...)
		}
		return errs
	}
	return nil
}

// compiled returns the compiled form of a template string.
func (t *Template) compiled(s string) (*expr.Expr, error) {
	if e, ok := t.exprs[s]; ok {
		return e, nil
	}
	return expr.Compile(s)
}

// NumExpressions is how many distinct expressions the template holds.
func (t *Template) NumExpressions() int { return t.numExprs }

// ParameterNames returns the declared parameters' names, sorted.
func (t *Template) ParameterNames() []string {
	out := make([]string, 0, len(t.Parameters))
	for n := range t.Parameters {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Expressions returns every distinct expression string of the template,
// sorted (for fuzz seeds and tooling).
func (t *Template) Expressions() []string {
	var out []string
	for s, e := range t.exprs {
		if e.Root != nil {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
