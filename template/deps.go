package template

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vmss-emulator/vmss/template/expr"
)

// headString evaluates a resource's type, name or apiVersion.
func (d *Deployment) headString(ctx context.Context, env *env, rr *rawResource, key string) (string, error) {
	path := joinPath(rr.path, key)
	v, err := d.evalValue(ctx, env, field(rr.body, key), path)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok || s == "" {
		return "", atPath(path, fmt.Errorf("must evaluate to a non-empty string, got %s", expr.TypeName(v)))
	}
	return s, nil
}

// fullTypeName joins a nested resource's relative type and name to its parent's.
func fullTypeName(parent *Resource, typ, name string) (string, string, error) {
	typ = strings.Trim(typ, "/")
	if parent != nil && !strings.Contains(typ, "/") {
		typ = parent.Type + "/" + typ
	}
	_, types, err := splitType(typ)
	if err != nil {
		return "", "", err
	}
	name = strings.Trim(name, "/")
	segs := strings.Split(name, "/")
	if parent != nil && len(segs) == 1 && len(types) > 1 {
		name = parent.Name + "/" + name
		segs = strings.Split(name, "/")
	}
	if len(segs) != len(types) {
		return "", "", fmt.Errorf("name '%s' has %d segment%s but type '%s' needs %d (one per type level, e.g. parent/child)", name, len(segs), plural(len(segs)), typ, len(types))
	}
	return typ, name, nil
}

// expand creates the resource instances: copy loops, nested resources,
// names, ids, conditions and the dependsOn strings.
func (d *Deployment) expand(ctx context.Context) error {
	instances := map[*rawResource][]*Resource{}
	var errs []error
	for _, rr := range d.tpl.resources {
		if err := ctx.Err(); err != nil {
			return err
		}
		parents := []*Resource{nil}
		if rr.parent != nil {
			parents = instances[rr.parent]
		}
		for _, p := range parents {
			var base []loopPos
			if p != nil {
				base = p.loops
			}
			count, loopName := 1, ""
			if rr.copy != nil {
				n, err := d.count(ctx, &env{d: d, kind: kindHead, loops: base}, rr.copy.count, joinPath(rr.copy.path, "count"))
				if err != nil {
					errs = append(errs, err)
					continue
				}
				count, loopName = n, rr.copy.name
			}
			for i := 0; i < count; i++ {
				loops := base
				if rr.copy != nil {
					loops = append(append([]loopPos{}, base...), loopPos{name: loopName, index: i, resource: true})
				}
				r, err := d.instance(ctx, rr, p, loops)
				if err != nil {
					errs = append(errs, err)
					break
				}
				if len(d.resources) >= maxResources {
					return atPath(rr.path, fmt.Errorf("the template expands to more than %d resources (copies included), the ARM limit", maxResources))
				}
				if rr.copy != nil {
					r.CopyName, r.CopyIndex = loopName, i
					key := strings.ToLower(loopName)
					d.loops[key] = append(d.loops[key], r)
				}
				instances[rr] = append(instances[rr], r)
				d.resources = append(d.resources, r)
				d.scope.Logger.Debug("template resource", "path", r.Path, "id", r.ID, "condition", r.Condition)
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	deployable := map[string]*Resource{}
	for _, r := range d.resources {
		key := strings.ToLower(r.ID)
		if _, ok := d.byID[key]; !ok {
			d.byID[key] = r
		}
		if !r.Condition {
			continue
		}
		if o, ok := deployable[key]; ok {
			errs = append(errs, atPath(r.Path, fmt.Errorf("%s is declared twice (also at %s); resource names must be unique per type", r.ID, o.Path)))
			continue
		}
		deployable[key] = r
	}
	for name, rs := range d.loops {
		for _, r := range d.resources {
			if strings.EqualFold(r.Name, name) && r.CopyName == "" {
				errs = append(errs, atPath(r.Path, fmt.Errorf("resource name '%s' is also the name of the copy loop at %s; dependsOn would be ambiguous", r.Name, rs[0].raw.copy.path)))
			}
		}
	}
	return errors.Join(errs...)
}

func (d *Deployment) instance(ctx context.Context, rr *rawResource, parent *Resource, loops []loopPos) (*Resource, error) {
	env := &env{d: d, kind: kindHead, loops: loops}
	typ, err := d.headString(ctx, env, rr, "type")
	if err != nil {
		return nil, err
	}
	name, err := d.headString(ctx, env, rr, "name")
	if err != nil {
		return nil, err
	}
	api, err := d.headString(ctx, env, rr, "apiVersion")
	if err != nil {
		return nil, err
	}
	typ, name, err = fullTypeName(parent, typ, name)
	if err != nil {
		return nil, atPath(rr.path, err)
	}
	r := &Resource{Path: rr.path, Type: typ, Name: name, APIVersion: api, Condition: true, Level: -1, raw: rr, loops: loops, parent: parent}
	if r.ID, err = d.idFor(typ, name); err != nil {
		return nil, atPath(rr.path, err)
	}
	if c, ok := expr.Lookup(rr.body, "condition"); ok {
		path := joinPath(rr.path, "condition")
		v, err := d.evalValue(ctx, env, c, path)
		if err != nil {
			return nil, err
		}
		if r.Condition, err = Bool(v); err != nil {
			return nil, atPath(path, err)
		}
	}
	if parent != nil && !parent.Condition {
		r.Condition = false
	}
	deps, _ := field(rr.body, "dependsOn").([]any)
	for j, dv := range deps {
		path := indexPath(joinPath(rr.path, "dependsOn"), j)
		v, err := d.evalValue(ctx, env, dv, path)
		if err != nil {
			return nil, err
		}
		s, ok := v.(string)
		if !ok || s == "" {
			return nil, atPath(path, fmt.Errorf("must evaluate to a resource name or id, got %s", expr.TypeName(v)))
		}
		r.rawDeps = append(r.rawDeps, s)
	}
	return r, nil
}

// match resolves a dependsOn-style reference: a copy loop name, a resource
// id, Type/name (as templates concatenate them), or a resource name.
func (d *Deployment) match(ref string) ([]*Resource, error) {
	s := strings.Trim(ref, " ")
	ls := strings.ToLower(strings.TrimSuffix(s, "/"))
	if rs, ok := d.loops[ls]; ok {
		return rs, nil
	}
	if strings.HasPrefix(ls, "/") {
		if r, ok := d.byID[ls]; ok {
			return []*Resource{r}, nil
		}
		return nil, fmt.Errorf("no resource with id '%s' in the template", ref)
	}
	if strings.Contains(ls, "/") {
		if r := d.matchTypeName(s); r != nil {
			return []*Resource{r}, nil
		}
	}
	var found []*Resource
	for _, r := range d.resources {
		if strings.EqualFold(r.Name, s) {
			found = append(found, r)
		}
	}
	if len(found) == 1 {
		return found, nil
	}
	if len(found) > 1 {
		return nil, fmt.Errorf("'%s' is ambiguous: it names %s and %s; write Type/name instead", ref, found[0], found[1])
	}
	var cands []string
	for _, r := range d.resources {
		if strings.Contains(ls, "/") {
			cands = append(cands, r.Type+"/"+r.Name)
		} else {
			cands = append(cands, r.Name)
		}
	}
	for n := range d.loops {
		cands = append(cands, d.loops[n][0].CopyName)
	}
	return nil, fmt.Errorf("no resource or copy loop named '%s' in the template%s", ref, didYouMean(ref, cands))
}

// matchTypeName resolves "Namespace/type/name[/childType/childName]" and
// "Namespace/type/childType/name/childName" to a template resource.
func (d *Deployment) matchTypeName(s string) *Resource {
	segs := strings.Split(strings.Trim(s, "/"), "/")
	if len(segs) < 3 {
		return nil
	}
	ns, rest := segs[0], segs[1:]
	var forms [][2][]string // type segments, name segments
	if len(rest)%2 == 0 {
		var types, names []string
		for i := 0; i < len(rest); i += 2 {
			types, names = append(types, rest[i]), append(names, rest[i+1])
		}
		forms = append(forms, [2][]string{types, names}, [2][]string{rest[:len(rest)/2], rest[len(rest)/2:]})
	}
	for _, f := range forms {
		id, err := d.idFor(ns+"/"+strings.Join(f[0], "/"), strings.Join(f[1], "/"))
		if err != nil {
			continue
		}
		if r, ok := d.byID[strings.ToLower(id)]; ok {
			return r
		}
	}
	return nil
}

// resolveDeps turns dependsOn strings, parents, reference() targets and
// serial copy batches into dependencies between instances.
func (d *Deployment) resolveDeps(ctx context.Context) error {
	pos := map[*Resource]int{}
	for i, r := range d.resources {
		pos[r] = i
	}
	var errs []error
	for _, r := range d.resources {
		set := map[*Resource]bool{}
		add := func(t *Resource) {
			if t != r && t.Condition {
				set[t] = true
			}
		}
		for j, s := range r.rawDeps {
			ts, err := d.match(s)
			if err != nil {
				errs = append(errs, atPath(indexPath(joinPath(r.Path, "dependsOn"), j), err))
				continue
			}
			for _, t := range ts {
				if t == r {
					errs = append(errs, atPath(indexPath(joinPath(r.Path, "dependsOn"), j), fmt.Errorf("%s depends on itself", r)))
				}
				add(t)
			}
		}
		if r.parent != nil {
			add(r.parent)
		}
		for _, t := range d.implicitDeps(ctx, r) {
			add(t)
		}
		if c := r.raw.copy; c != nil && c.mode == "serial" {
			batch := 1
			if c.batchSize != nil {
				n, err := d.count(ctx, &env{d: d, kind: kindHead, loops: r.loops}, c.batchSize, joinPath(c.path, "batchSize"))
				if err != nil {
					errs = append(errs, err)
				} else if n > 0 {
					batch = n
				}
			}
			siblings := d.loops[strings.ToLower(c.name)]
			b := r.CopyIndex / batch
			for _, s := range siblings {
				if s.raw == r.raw && s.parent == r.parent && s.CopyIndex/batch == b-1 {
					add(s)
				}
			}
		}
		for t := range set {
			r.deps = append(r.deps, t)
		}
		sortByPos(r.deps, pos)
		for _, t := range r.deps {
			r.DependsOn = append(r.DependsOn, t.ID)
		}
	}
	return errors.Join(errs...)
}

func sortByPos(rs []*Resource, pos map[*Resource]int) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && pos[rs[j]] < pos[rs[j-1]]; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

// implicitDeps finds the template resources that r's body reads with
// reference() or list*(), as ARM adds them as dependencies.
func (d *Deployment) implicitDeps(ctx context.Context, r *Resource) []*Resource {
	var out []*Resource
	env := &env{d: d, kind: kindScan, loops: r.loops}
	var scan func(v any)
	scan = func(v any) {
		switch x := v.(type) {
		case string:
			e, err := d.tpl.compiled(x)
			if err != nil || e.Root == nil {
				return
			}
			expr.Walk(e.Root, func(n expr.Node) bool {
				c, ok := n.(*expr.Call)
				if !ok || len(c.Args) == 0 {
					return true
				}
				ln := strings.ToLower(c.Name)
				if ln != "reference" && !strings.HasPrefix(ln, "list") {
					return true
				}
				v, err := e.EvalNode(ctx, c.Args[0], env)
				s, ok := v.(string)
				if err != nil || !ok {
					return true
				}
				if ts, err := d.match(s); err == nil {
					out = append(out, ts...)
				}
				return true
			})
		case []any:
			for _, e := range x {
				scan(e)
			}
		case map[string]any:
			for k, e := range x {
				switch strings.ToLower(k) {
				case "resources", "dependson", "name", "type", "apiversion", "copy":
					if k == "copy" && isCopyArray(e) {
						scan(e)
					}
					continue
				}
				scan(e)
			}
		}
	}
	scan(r.raw.body)
	return out
}

// order checks for cycles and groups the deployable resources into levels.
func (d *Deployment) order() error {
	const (
		visiting = 1
		done     = 2
	)
	state := map[*Resource]int{}
	var stack []*Resource
	var visit func(r *Resource) error
	visit = func(r *Resource) error {
		switch state[r] {
		case done:
			return nil
		case visiting:
			i := len(stack) - 1
			for i > 0 && stack[i] != r {
				i--
			}
			var names []string
			for _, s := range stack[i:] {
				names = append(names, fmt.Sprintf("%s (%s)", s, s.Path))
			}
			names = append(names, fmt.Sprintf("%s (%s)", r, r.Path))
			return fmt.Errorf("dependency cycle: %s", strings.Join(names, " -> "))
		}
		state[r] = visiting
		stack = append(stack, r)
		level := 0
		for _, t := range r.deps {
			if err := visit(t); err != nil {
				return err
			}
			level = max(level, t.Level+1)
		}
		stack = stack[:len(stack)-1]
		state[r] = done
		r.Level = level
		return nil
	}
	for _, r := range d.resources {
		if !r.Condition {
			continue
		}
		if err := visit(r); err != nil {
			return err
		}
	}
	for _, r := range d.resources {
		if !r.Condition {
			continue
		}
		for len(d.levels) <= r.Level {
			d.levels = append(d.levels, nil)
		}
		d.levels[r.Level] = append(d.levels[r.Level], r)
	}
	return nil
}
