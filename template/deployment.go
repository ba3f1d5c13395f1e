package template

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmss-emulator/vmss/template/expr"
)

// Scope is where a template is deployed and how deployed state is read.
type Scope struct {
	// SubscriptionID; "" means 00000000-0000-0000-0000-000000000000.
	SubscriptionID string
	// SubscriptionName is subscription().displayName; "" means "vmss".
	SubscriptionName string
	// TenantID; "" means 00000000-0000-0000-0000-000000000000.
	TenantID string
	// ResourceGroup is required.
	ResourceGroup string
	// Location is resourceGroup().location; required.
	Location string
	// DeploymentName is deployment().name; "" means "azuredeploy".
	DeploymentName string
	// Now is the clock of utcNow(); nil means time.Now.
	Now func() time.Time
	// Reference returns the full resource object (the body of a GET: id,
	// name, type, location, properties, ...) for reference(). Return an
	// error wrapping ErrNotDeployed when the resource does not exist yet.
	// nil means nothing can be referenced (reference() fails with
	// ErrNotDeployed).
	Reference func(ctx context.Context, id, apiVersion string) (map[string]any, error)
	// ListKeys answers listKeys(); nil means listKeys() fails with ErrNotDeployed.
	ListKeys func(ctx context.Context, id, apiVersion string) (map[string]any, error)
	// Logger receives debug records of the expansion (never values); nil discards.
	Logger *slog.Logger
}

const zeroGUID = "00000000-0000-0000-0000-000000000000"

func (s *Scope) defaults() error {
	if s.SubscriptionID == "" {
		s.SubscriptionID = zeroGUID
	}
	if s.TenantID == "" {
		s.TenantID = zeroGUID
	}
	if s.SubscriptionName == "" {
		s.SubscriptionName = "vmss"
	}
	if s.DeploymentName == "" {
		s.DeploymentName = "azuredeploy"
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var errs []error
	if s.ResourceGroup == "" {
		errs = append(errs, errors.New("scope: a resource group name is required"))
	}
	if s.Location == "" {
		errs = append(errs, errors.New("scope: a location is required"))
	}
	return errors.Join(errs...)
}

func (s *Scope) rgID() string {
	return "/subscriptions/" + s.SubscriptionID + "/resourceGroups/" + s.ResourceGroup
}

// Inputs are the parameter values of a deployment.
type Inputs struct {
	// Params are values by name (from ParseParameters or built by the caller).
	Params map[string]any
	// Overrides are "name=value" strings (command line), applied after
	// Params; the value is converted to the declared type (int, bool, JSON
	// for object and array).
	Overrides []string
}

// Resource is one resource instance of a prepared deployment (a copy loop
// gives one per index).
type Resource struct {
	// Path is the JSON path of the resource in the template, e.g. "resources[4]".
	Path string
	// Type is the full type, e.g. Microsoft.Network/virtualNetworks/subnets.
	Type string
	// Name is the full name, e.g. vnet1/subnet1.
	Name string
	// ID is the full ARM resource id.
	ID         string
	APIVersion string
	// Condition is false when the resource's condition evaluated to false:
	// it is not deployed, is absent from Levels, and dependencies on it are dropped.
	Condition bool
	// CopyName and CopyIndex place the instance in its copy loop
	// (CopyName "" when the resource has no loop).
	CopyName  string
	CopyIndex int
	// DependsOn are the ids of the resources this one waits for, in template order.
	DependsOn []string
	// Level is the index in Levels (-1 when Condition is false).
	Level int

	raw     *rawResource
	loops   []loopPos
	parent  *Resource
	deps    []*Resource
	rawDeps []string
}

// String is Type/Name.
func (r *Resource) String() string { return r.Type + "/" + r.Name }

// Deployment is a template bound to parameters and a scope, with its
// resources expanded and ordered. Parameters and variables are evaluated by
// Prepare (as in ARM, variables cannot call reference() or list*());
// resource bodies and outputs are evaluated on demand, so reference() can be
// answered by resources deployed earlier. After Prepare a Deployment is
// read-only: Evaluate, WhatIf and Outputs may run concurrently.
type Deployment struct {
	tpl   *Template
	scope Scope
	red   redactor

	given     map[string]any
	source    map[string]string
	params    map[string]*ParamValue
	resolving map[string]bool

	vars        map[string]any
	varState    map[string]int // 1 = evaluating, 2 = done
	varCopyByNm map[string]*copySpec

	resources []*Resource
	levels    [][]*Resource
	byID      map[string]*Resource // lower-case id
	loops     map[string][]*Resource

	evaluated atomic.Int64 // expressions evaluated, for benchmarks

	sizeMu sync.Mutex
	sizes  map[string]int // size of each evaluated top-level value
	total  int            // their sum
}

// Prepare resolves parameters and variables, expands copy loops and nested
// resources, evaluates names, conditions and dependsOn, and orders the
// resources into levels. All problems found are returned together.
func Prepare(ctx context.Context, tpl *Template, in Inputs, scope Scope) (*Deployment, error) {
	if err := scope.defaults(); err != nil {
		return nil, err
	}
	d := &Deployment{
		tpl: tpl, scope: scope,
		params: map[string]*ParamValue{}, resolving: map[string]bool{},
		vars: map[string]any{}, varState: map[string]int{}, varCopyByNm: map[string]*copySpec{},
		byID: map[string]*Resource{}, loops: map[string][]*Resource{},
	}
	if err := d.resolveParams(ctx, in); err != nil {
		return nil, d.red.public(err)
	}
	if err := d.resolveVariables(ctx); err != nil {
		return nil, d.red.public(err)
	}
	if err := d.expand(ctx); err != nil {
		return nil, d.red.public(err)
	}
	if err := d.resolveDeps(ctx); err != nil {
		return nil, d.red.public(err)
	}
	if err := d.order(); err != nil {
		return nil, d.red.public(err)
	}
	return d, nil
}

func (d *Deployment) resolveVariables(ctx context.Context) error {
	for i := range d.tpl.varCopies {
		c := &d.tpl.varCopies[i]
		d.varCopyByNm[strings.ToLower(c.name)] = c
	}
	var errs []error
	for _, name := range expr.Keys(d.tpl.variables) {
		if _, err := d.variable(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	for _, c := range d.tpl.varCopies {
		if _, err := d.variable(ctx, c.name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// variable returns a variable's value, evaluating it on first use. Only
// Prepare evaluates variables; afterwards this only reads.
func (d *Deployment) variable(ctx context.Context, name string) (any, error) {
	key := name
	raw, ok := d.tpl.variables[name]
	if !ok {
		for k, v := range d.tpl.variables {
			if strings.EqualFold(k, name) {
				key, raw, ok = k, v, true
			}
		}
	}
	var cs *copySpec
	if !ok {
		cs = d.varCopyByNm[strings.ToLower(name)]
		if cs == nil {
			names := expr.Keys(d.tpl.variables)
			for _, c := range d.tpl.varCopies {
				names = append(names, c.name)
			}
			return nil, fmt.Errorf("no variable '%s'%s", name, didYouMean(name, names))
		}
		key = "copy:" + cs.name
	}
	switch d.varState[key] {
	case 2:
		return d.vars[key], nil
	case 1:
		return nil, fmt.Errorf("variable '%s' refers to itself", name)
	}
	d.varState[key] = 1
	env := &env{d: d, kind: kindVariable, spent: new(int)}
	var v any
	var err error
	if cs != nil {
		v, err = d.expandCopy(ctx, env, cs)
	} else {
		v, err = d.evalValue(ctx, env, raw, joinPath("variables", key))
	}
	if err == nil {
		err = checkValue(joinPath("variables", key), v)
	}
	if err == nil {
		err = d.record("variables:"+key, joinPath("variables", key), v)
	}
	if err != nil {
		delete(d.varState, key)
		return nil, err
	}
	d.vars[key], d.varState[key] = v, 2
	return v, nil
}

// Template returns the template this deployment was prepared from.
func (d *Deployment) Template() *Template { return d.tpl }

// Scope returns the scope with defaults filled in.
func (d *Deployment) Scope() Scope { return d.scope }

// Resources returns every resource instance in template order, including
// those whose condition is false.
func (d *Deployment) Resources() []*Resource { return d.resources }

// Levels returns the deployable resources (condition true) grouped so that
// each resource comes after everything it depends on: the resources of one
// level are independent of each other and can be deployed in parallel.
func (d *Deployment) Levels() [][]*Resource { return d.levels }

// Lookup finds a resource instance by id, name, or Type/name, as dependsOn
// and reference() would.
func (d *Deployment) Lookup(ref string) (*Resource, error) {
	rs, err := d.match(ref)
	if err != nil {
		return nil, d.red.public(err)
	}
	if len(rs) != 1 {
		return nil, d.red.public(fmt.Errorf("%q names %d resources (a copy loop); give one resource", ref, len(rs)))
	}
	return rs[0], nil
}

// Evaluate returns the resource's whole body evaluated: type, name,
// apiVersion, location, tags, sku, properties, ... (copy, condition,
// dependsOn, nested resources and comments removed; property copy loops
// expanded). reference() and listKeys() go to the Scope callbacks. The
// result is the caller's to change.
func (d *Deployment) Evaluate(ctx context.Context, r *Resource) (map[string]any, error) {
	body, _, err := d.evaluate(ctx, r, false)
	return body, err
}

// WhatIf evaluates like Evaluate but, where a reference() or listKeys()
// callback answers ErrNotDeployed, keeps the expression string as written
// and lists its JSON path in unresolved. It has no side effects beyond the
// callbacks, so an engine can compare the result with existing state.
func (d *Deployment) WhatIf(ctx context.Context, r *Resource) (body map[string]any, unresolved []string, err error) {
	return d.evaluate(ctx, r, true)
}

func (d *Deployment) evaluate(ctx context.Context, r *Resource, whatIf bool) (map[string]any, []string, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	env := &env{d: d, kind: kindResource, loops: r.loops, res: r, whatIf: whatIf, spent: new(int)}
	out := map[string]any{}
	for _, k := range expr.Keys(r.raw.body) {
		switch strings.ToLower(k) {
		case "copy", "condition", "dependson", "resources", "comments":
			continue
		case "type":
			out[k] = r.Type
			continue
		case "name":
			out[k] = r.Name
			continue
		case "apiversion":
			out[k] = r.APIVersion
			continue
		}
		v, err := d.evalValue(ctx, env, r.raw.body[k], joinPath(r.Path, k))
		if err != nil {
			return nil, nil, d.red.public(err)
		}
		out[k] = v
	}
	if err := checkValue(r.Path, out); err != nil {
		return nil, nil, d.red.public(err)
	}
	if err := d.record(fmt.Sprintf("resource %p", r), r.Path, out); err != nil {
		return nil, nil, d.red.public(err)
	}
	return expr.Clone(out).(map[string]any), *env.unresolvedPtr(), nil
}

// Output is one evaluated output.
type Output struct {
	Type  string
	Value any
	// Secure marks securestring/secureObject outputs.
	Secure bool
}

// Outputs evaluates the template's outputs (after the resources are
// deployed, since they may call reference()). Outputs whose condition is
// false are left out.
func (d *Deployment) Outputs(ctx context.Context) (map[string]Output, error) {
	out := map[string]Output{}
	var errs []error
	for _, name := range expr.Keys(anyMap(d.tpl.outputs)) {
		o := d.tpl.outputs[name]
		path := joinPath("outputs", name)
		env := &env{d: d, kind: kindOutput, spent: new(int)}
		if c, ok := expr.Lookup(o, "condition"); ok {
			cv, err := d.evalValue(ctx, env, c, joinPath(path, "condition"))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			b, err := Bool(cv)
			if err != nil {
				errs = append(errs, atPath(joinPath(path, "condition"), err))
				continue
			}
			if !b {
				continue
			}
		}
		typ, _ := field(o, "type").(string)
		var v any
		var err error
		if c, ok := field(o, "copy").(map[string]any); ok {
			cs := &copySpec{name: name, count: field(c, "count"), input: field(c, "input"), path: joinPath(path, "copy")}
			v, err = d.expandCopy(ctx, env, cs)
		} else {
			v, err = d.evalValue(ctx, env, field(o, "value"), joinPath(path, "value"))
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := checkValue(path, v); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := d.record(path, path, v); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := checkOutputType(typ, v); err != nil {
			errs = append(errs, atPath(path, err))
			continue
		}
		lt := strings.ToLower(typ)
		if lt == "securestring" || lt == "secureobject" {
			d.red.add(v)
		}
		out[name] = Output{Type: typ, Value: expr.Clone(v), Secure: lt == "securestring" || lt == "secureobject"}
	}
	if len(errs) > 0 {
		return nil, d.red.public(errors.Join(errs...))
	}
	return out, nil
}

func anyMap[V any](m map[string]V) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func checkOutputType(typ string, v any) error {
	ok, known := hasType(strings.ToLower(typ), v)
	switch {
	case !known:
		return fmt.Errorf("output type %q is not one of string, int, bool, object, array, securestring, secureObject", typ)
	case !ok && v != nil:
		return fmt.Errorf("output is declared %s but its value is %s", typ, a(expr.TypeName(v)))
	}
	return nil
}
