package template

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/template/expr"
)

type envKind int

const (
	kindParamDefault envKind = iota // parameter defaultValue
	kindVariable                    // variables
	kindHead                        // resource type, name, apiVersion, copy count, condition, dependsOn
	kindScan                        // dependency scan of reference() targets
	kindResource                    // resource body
	kindOutput                      // outputs
)

func (k envKind) String() string {
	switch k {
	case kindParamDefault:
		return "parameter default values"
	case kindVariable:
		return "variables"
	case kindHead, kindScan:
		return "a resource's type, name, apiVersion, copy count, condition or dependsOn"
	case kindResource:
		return "resource properties"
	}
	return "outputs"
}

// loopPos is the current index of one copy loop.
type loopPos struct {
	name     string
	index    int
	resource bool // a resource copy (copyIndex() without a name refers to it)
}

// env is the expr.Host of one evaluation.
type env struct {
	d          *Deployment
	kind       envKind
	loops      []loopPos
	res        *Resource
	whatIf     bool
	unresolved *[]string
	// spent counts the bytes of the top-level value being evaluated (see
	// charge); nil: not counted.
	spent *int
}

func (e *env) with(p loopPos) *env {
	sub := *e
	sub.unresolved = e.unresolvedPtr()
	sub.loops = append(append([]loopPos{}, e.loops...), p)
	return &sub
}

func (e *env) unresolvedPtr() *[]string {
	if e.unresolved == nil {
		e.unresolved = new([]string)
	}
	return e.unresolved
}

var hostFuncs = []string{
	"parameters", "variables", "copyIndex", "resourceId", "subscriptionResourceId", "tenantResourceId",
	"extensionResourceId", "resourceGroup", "subscription", "tenant", "deployment", "environment", "providers",
	"reference", "listKeys", "utcNow", "newGuid",
}

func (e *env) FuncNames() []string { return hostFuncs }

func (e *env) CallFunc(ctx context.Context, name string, args []any) (any, bool, error) {
	var v any
	var err error
	switch name {
	case "parameters":
		v, err = e.parameters(ctx, args)
	case "variables":
		v, err = e.variables(ctx, args)
	case "copyindex":
		v, err = e.copyIndex(args)
	case "resourceid":
		v, err = e.resourceID(name, args, true, true)
	case "subscriptionresourceid":
		v, err = e.resourceID(name, args, true, false)
	case "tenantresourceid":
		v, err = e.resourceID(name, args, false, false)
	case "extensionresourceid":
		v, err = extensionResourceID(args)
	case "resourcegroup":
		v, err = e.noArgs(args, e.resourceGroup)
	case "subscription":
		v, err = e.noArgs(args, e.subscription)
	case "tenant":
		v, err = e.noArgs(args, func() any {
			return map[string]any{"tenantId": e.d.scope.TenantID, "countryCode": "US", "displayName": "vmss"}
		})
	case "deployment":
		v, err = e.noArgs(args, e.deployment)
	case "environment":
		v, err = e.noArgs(args, environment)
	case "providers":
		v, err = e.providers(args)
	case "reference":
		v, err = e.reference(ctx, args)
	case "utcnow":
		v, err = e.utcNow(args)
	case "newguid":
		v, err = e.newGUID(args)
	default:
		if strings.HasPrefix(name, "list") {
			v, err = e.list(ctx, name, args)
			break
		}
		return nil, false, nil
	}
	return v, true, err
}

func stringArg(args []any, i int, what string) (string, error) {
	s, ok := args[i].(string)
	if !ok {
		return "", fmt.Errorf("%s must be a string, got %s", what, expr.TypeName(args[i]))
	}
	return s, nil
}

func (e *env) parameters(ctx context.Context, args []any) (any, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("takes 1 argument (the parameter name), got %d", len(args))
	}
	s, err := stringArg(args, 0, "the parameter name")
	if err != nil {
		return nil, err
	}
	return e.d.param(ctx, s)
}

func (e *env) variables(ctx context.Context, args []any) (any, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("takes 1 argument (the variable name), got %d", len(args))
	}
	if e.kind == kindParamDefault {
		return nil, errors.New("variables() cannot be used in parameter default values")
	}
	s, err := stringArg(args, 0, "the variable name")
	if err != nil {
		return nil, err
	}
	return e.d.variable(ctx, s)
}

func (e *env) copyIndex(args []any) (any, error) {
	if len(args) > 2 {
		return nil, fmt.Errorf("takes at most 2 arguments (loopName, offset), got %d", len(args))
	}
	loop, offset := "", int64(0)
	for i, a := range args {
		switch x := a.(type) {
		case string:
			if i != 0 {
				return nil, errors.New("the loop name must be the first argument")
			}
			loop = x
		default:
			if i == 0 && len(args) == 2 {
				return nil, fmt.Errorf("argument 1 must be the loop name, got %s", expr.TypeName(a))
			}
			n, err := Int(x)
			if err != nil {
				return nil, fmt.Errorf("argument %d must be an integer offset, got %s", i+1, expr.TypeName(a))
			}
			offset = n
		}
	}
	if len(e.loops) == 0 {
		return nil, errors.New("copyIndex() is only valid inside a copy loop")
	}
	if loop == "" {
		for i := len(e.loops) - 1; i >= 0; i-- {
			if e.loops[i].resource {
				return int64(e.loops[i].index) + offset, nil
			}
		}
		return int64(e.loops[len(e.loops)-1].index) + offset, nil
	}
	var names []string
	for i := len(e.loops) - 1; i >= 0; i-- {
		if strings.EqualFold(e.loops[i].name, loop) {
			return int64(e.loops[i].index) + offset, nil
		}
		names = append(names, e.loops[i].name)
	}
	return nil, fmt.Errorf("no copy loop '%s' here (loops in scope: %s)", loop, strings.Join(names, ", "))
}

func (e *env) noArgs(args []any, f func() any) (any, error) {
	if len(args) != 0 {
		return nil, fmt.Errorf("takes no arguments, got %d", len(args))
	}
	return f(), nil
}

// splitType splits a resource type into its namespace and type segments.
func splitType(typ string) (string, []string, error) {
	segs := strings.Split(strings.Trim(typ, "/"), "/")
	if len(segs) < 2 || segs[0] == "" {
		return "", nil, fmt.Errorf("'%s' is not a resource type (Namespace/type[/childType])", typ)
	}
	for _, s := range segs {
		if s == "" {
			return "", nil, fmt.Errorf("'%s' is not a resource type: it has an empty segment", typ)
		}
	}
	return segs[0], segs[1:], nil
}

// providerPath builds "/providers/ns/t1/n1/t2/n2" from a type and names.
func providerPath(typ string, names []string) (string, error) {
	ns, types, err := splitType(typ)
	if err != nil {
		return "", err
	}
	var flat []string
	for _, n := range names {
		flat = append(flat, strings.Split(strings.Trim(n, "/"), "/")...)
	}
	if len(flat) != len(types) {
		return "", fmt.Errorf("type '%s' needs %d name%s, got %d (%s)", strings.Trim(typ, "/"), len(types), plural(len(types)), len(flat), strings.Join(flat, ", "))
	}
	var b strings.Builder
	b.WriteString("/providers/" + ns)
	for i, t := range types {
		if flat[i] == "" {
			return "", fmt.Errorf("resource name %d for type '%s' is empty", i+1, typ)
		}
		b.WriteString("/" + t + "/" + flat[i])
	}
	return b.String(), nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// idFor is the id of a resource of this deployment's resource group.
func (d *Deployment) idFor(typ, name string) (string, error) {
	p, err := providerPath(typ, []string{name})
	if err != nil {
		return "", err
	}
	return d.scope.rgID() + p, nil
}

func (e *env) resourceID(fn string, args []any, allowSub, allowRG bool) (any, error) {
	strs := make([]string, len(args))
	for i, a := range args {
		switch a.(type) {
		case []any, map[string]any, nil:
			return nil, fmt.Errorf("argument %d must be a string, got %s", i+1, expr.TypeName(a))
		}
		strs[i] = expr.Stringify(a)
	}
	ti := -1
	for i, s := range strs {
		if strings.Contains(s, "/") {
			ti = i
			break
		}
	}
	if ti < 0 {
		return nil, errors.New("no resource type (Namespace/type) among the arguments")
	}
	maxScope := 0
	if allowSub {
		maxScope++
	}
	if allowRG {
		maxScope++
	}
	if ti > maxScope {
		return nil, fmt.Errorf("the resource type must come within the first %d arguments, found '%s' at %d", maxScope+1, strs[ti], ti+1)
	}
	if ti == len(strs)-1 {
		return nil, fmt.Errorf("no resource name after the type '%s'", strs[ti])
	}
	sub, rg := e.d.scope.SubscriptionID, e.d.scope.ResourceGroup
	switch {
	case ti == 2:
		sub, rg = strs[0], strs[1]
	case ti == 1 && allowRG:
		rg = strs[0]
	case ti == 1:
		sub = strs[0]
	}
	p, err := providerPath(strs[ti], strs[ti+1:])
	if err != nil {
		return nil, err
	}
	switch fn {
	case "resourceid":
		return "/subscriptions/" + sub + "/resourceGroups/" + rg + p, nil
	case "subscriptionresourceid":
		return "/subscriptions/" + sub + p, nil
	}
	return p, nil
}

func extensionResourceID(args []any) (any, error) {
	if len(args) < 3 {
		return nil, fmt.Errorf("takes a resource id, a type and names, got %d arguments", len(args))
	}
	base, err := stringArg(args, 0, "the resource id")
	if err != nil {
		return nil, err
	}
	typ, err := stringArg(args, 1, "the extension type")
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(args)-2)
	for i := 2; i < len(args); i++ {
		n, err := stringArg(args, i, "a name")
		if err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	p, err := providerPath(typ, names)
	if err != nil {
		return nil, err
	}
	return strings.TrimSuffix(base, "/") + p, nil
}

func (e *env) resourceGroup() any {
	s := e.d.scope
	return map[string]any{
		"id": s.rgID(), "name": s.ResourceGroup, "type": "Microsoft.Resources/resourceGroups",
		"location": s.Location, "tags": map[string]any{},
		"properties": map[string]any{"provisioningState": "Succeeded"},
	}
}

func (e *env) subscription() any {
	s := e.d.scope
	return map[string]any{
		"id": "/subscriptions/" + s.SubscriptionID, "subscriptionId": s.SubscriptionID,
		"tenantId": s.TenantID, "displayName": s.SubscriptionName,
	}
}

func (e *env) deployment() any {
	return map[string]any{
		"name": e.d.scope.DeploymentName,
		"properties": map[string]any{
			"template":          map[string]any{"contentVersion": e.d.tpl.ContentVersion},
			"mode":              "Incremental",
			"provisioningState": "Accepted",
		},
	}
}

// environment is the AzureCloud answer of environment().
func environment() any {
	return map[string]any{
		"name":                       "AzureCloud",
		"gallery":                    "https://gallery.azure.com/",
		"graph":                      "https://graph.windows.net/",
		"portal":                     "https://portal.azure.com",
		"graphAudience":              "https://graph.windows.net/",
		"activeDirectoryDataLake":    "https://datalake.azure.net/",
		"batch":                      "https://batch.core.windows.net/",
		"media":                      "https://rest.media.azure.net",
		"sqlManagement":              "https://management.core.windows.net:8443/",
		"vmImageAliasDoc":            "https://raw.githubusercontent.com/Azure/azure-rest-api-specs/master/arm-compute/quickstart-templates/aliases.json",
		"resourceManager":            "https://management.azure.com/",
		"authentication":             map[string]any{"loginEndpoint": "https://login.microsoftonline.com/", "audiences": []any{"https://management.core.windows.net/", "https://management.azure.com/"}, "tenant": "common", "identityProvider": "AAD"},
		"suffixes":                   map[string]any{"acrLoginServer": ".azurecr.io", "azureDatalakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net", "azureDatalakeStoreFileSystem": "azuredatalakestore.net", "azureFrontDoorEndpointSuffix": "azurefd.net", "keyvaultDns": ".vault.azure.net", "sqlServerHostname": ".database.windows.net", "storage": "core.windows.net"},
		"microsoftGraphResourceId":   "https://graph.microsoft.com/",
		"activeDirectoryDataLakeUri": "https://datalake.azure.net/",
	}
}

func (e *env) providers(args []any) (any, error) {
	if len(args) < 1 || len(args) > 2 {
		return nil, fmt.Errorf("takes a namespace and an optional resource type, got %d arguments", len(args))
	}
	ns, err := stringArg(args, 0, "the namespace")
	if err != nil {
		return nil, err
	}
	typeInfo := func(rt string) map[string]any {
		versions := []any{}
		for _, v := range arm.APIVersions(ns, rt) {
			versions = append(versions, v)
		}
		return map[string]any{"resourceType": rt, "locations": []any{e.d.scope.Location}, "apiVersions": versions}
	}
	if len(args) == 1 {
		types := []any{}
		if canon, ok := arm.CanonicalNamespace(ns); ok {
			for _, rt := range arm.ResourceTypes(canon) {
				types = append(types, typeInfo(rt))
			}
		}
		return map[string]any{"namespace": ns, "resourceTypes": types}, nil
	}
	rt, err := stringArg(args, 1, "the resource type")
	if err != nil {
		return nil, err
	}
	return typeInfo(rt), nil
}

// target resolves the first argument of reference()/list*(): a template
// resource's name or Type/name, or a resource id.
func (e *env) target(fn string, args []any) (id, apiVersion string, err error) {
	ref, err := stringArg(args, 0, "the resource name or id")
	if err != nil {
		return "", "", err
	}
	if len(args) > 1 {
		if apiVersion, err = stringArg(args, 1, "the apiVersion"); err != nil {
			return "", "", err
		}
	}
	if strings.HasPrefix(ref, "/") {
		id = ref
		if r, ok := e.d.byID[strings.ToLower(strings.TrimSuffix(ref, "/"))]; ok && apiVersion == "" {
			apiVersion = r.APIVersion
		}
	} else {
		rs, err := e.d.match(ref)
		if err != nil {
			return "", "", fmt.Errorf("%w; use a full resource id for a resource outside the template", err)
		}
		if len(rs) != 1 {
			return "", "", fmt.Errorf("'%s' is a copy loop of %d resources; reference one of them", ref, len(rs))
		}
		id = rs[0].ID
		if apiVersion == "" {
			apiVersion = rs[0].APIVersion
		}
	}
	if apiVersion == "" {
		return "", "", fmt.Errorf("%s() of '%s', which is not in this template, needs an apiVersion argument", fn, id)
	}
	return id, apiVersion, nil
}

func (e *env) reference(ctx context.Context, args []any) (any, error) {
	if len(args) < 1 || len(args) > 3 {
		return nil, fmt.Errorf("takes 1 to 3 arguments (resource, apiVersion, 'Full'), got %d", len(args))
	}
	if e.kind != kindResource && e.kind != kindOutput {
		return nil, fmt.Errorf("reference() cannot be used in %s", e.kind)
	}
	id, api, err := e.target("reference", args)
	if err != nil {
		return nil, err
	}
	full := false
	if len(args) == 3 {
		s, _ := args[2].(string)
		if !strings.EqualFold(s, "full") {
			return nil, fmt.Errorf("the third argument must be 'Full', got %s", expr.MarshalCompact(args[2]))
		}
		full = true
	}
	if e.d.scope.Reference == nil {
		return nil, fmt.Errorf("cannot read %s: no deployed state to read from: %w", id, ErrNotDeployed)
	}
	body, err := e.d.scope.Reference(ctx, id, api)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", id, err)
	}
	b := expr.Normalize(expr.Clone(map[string]any(body))).(map[string]any)
	if full {
		return b, nil
	}
	if p, ok := expr.Lookup(b, "properties"); ok && p != nil {
		return p, nil
	}
	return map[string]any{}, nil
}

func (e *env) list(ctx context.Context, name string, args []any) (any, error) {
	if name != "listkeys" {
		return nil, fmt.Errorf("%s() is not supported (of the list functions only listKeys is)", name)
	}
	if len(args) != 2 {
		return nil, fmt.Errorf("takes 2 arguments (resource, apiVersion), got %d", len(args))
	}
	if e.kind != kindResource && e.kind != kindOutput {
		return nil, fmt.Errorf("listKeys() cannot be used in %s", e.kind)
	}
	id, api, err := e.target("listKeys", args)
	if err != nil {
		return nil, err
	}
	if e.d.scope.ListKeys == nil {
		return nil, fmt.Errorf("cannot list the keys of %s: no key source: %w", id, ErrNotDeployed)
	}
	keys, err := e.d.scope.ListKeys(ctx, id, api)
	if err != nil {
		return nil, fmt.Errorf("cannot list the keys of %s: %w", id, err)
	}
	return expr.Normalize(expr.Clone(map[string]any(keys))), nil
}

func (e *env) utcNow(args []any) (any, error) {
	if e.kind != kindParamDefault {
		return nil, errors.New("utcNow() can only be used in a parameter's defaultValue")
	}
	if len(args) > 1 {
		return nil, fmt.Errorf("takes an optional format, got %d arguments", len(args))
	}
	f := "yyyyMMddTHHmmssZ"
	if len(args) == 1 {
		s, err := stringArg(args, 0, "the format")
		if err != nil {
			return nil, err
		}
		f = s
	}
	return dotnetTime(e.d.scope.Now().UTC(), f), nil
}

// dotnetTime formats t with a .NET format: the standard "u", "s", "o", "d",
// "t", "T", "g", "G" or a custom pattern of yyyy, yy, MM, dd, HH, hh, mm,
// ss, fff..., tt, with other characters copied.
func dotnetTime(t time.Time, f string) string {
	switch f {
	case "u":
		return t.Format("2006-01-02 15:04:05Z")
	case "s":
		return t.Format("2006-01-02T15:04:05")
	case "o", "O":
		return t.Format("2006-01-02T15:04:05.0000000Z")
	case "d":
		return t.Format("1/2/2006")
	case "t":
		return t.Format("3:04 PM")
	case "T":
		return t.Format("3:04:05 PM")
	case "g":
		return t.Format("1/2/2006 3:04 PM")
	case "G":
		return t.Format("1/2/2006 3:04:05 PM")
	}
	repl := []struct{ token, layout string }{
		{"yyyy", "2006"}, {"yy", "06"}, {"MMMM", "January"}, {"MMM", "Jan"}, {"MM", "01"}, {"M", "1"},
		{"dddd", "Monday"}, {"ddd", "Mon"}, {"dd", "02"}, {"d", "2"}, {"HH", "15"}, {"hh", "03"}, {"h", "3"},
		{"mm", "04"}, {"m", "4"}, {"ss", "05"}, {"s", "5"}, {"fffffff", "0000000"}, {"ffffff", "000000"},
		{"fffff", "00000"}, {"ffff", "0000"}, {"fff", "000"}, {"ff", "00"}, {"f", "0"}, {"tt", "PM"},
	}
	var b strings.Builder
outer:
	for i := 0; i < len(f); {
		for _, r := range repl {
			if strings.HasPrefix(f[i:], r.token) {
				b.WriteString(t.Format(r.layout))
				i += len(r.token)
				continue outer
			}
		}
		b.WriteByte(f[i])
		i++
	}
	return b.String()
}

func (e *env) newGUID(args []any) (any, error) {
	if e.kind != kindParamDefault {
		return nil, errors.New("newGuid() can only be used in a parameter's defaultValue")
	}
	if len(args) != 0 {
		return nil, fmt.Errorf("takes no arguments, got %d", len(args))
	}
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return nil, err
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]), nil
}
