package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/template"
)

// request is the body of a deployment PUT or whatIf POST.
type request struct {
	Properties struct {
		Mode            string          `json:"mode"`
		Template        json.RawMessage `json:"template"`
		TemplateLink    json.RawMessage `json:"templateLink"`
		Parameters      json.RawMessage `json:"parameters"`
		ParametersLink  json.RawMessage `json:"parametersLink"`
		EmulatorOptions emulatorOptions `json:"emulatorOptions"`
	} `json:"properties"`
}

// plan is a validated deployment, ready to run or to compare.
type plan struct {
	id    arm.ID
	mode  string // Incremental or Complete
	opts  emulatorOptions
	d     *template.Deployment
	red   *redactor
	hash  string
	deps  []dependency
	group string
	log   *slog.Logger // scrubs secure values
}

func invalidTemplate(format string, args ...any) *arm.Error {
	return arm.Errorf(http.StatusBadRequest, "InvalidTemplate", "", format, args...)
}

func invalidDeployment(format string, args ...any) *arm.Error {
	return arm.Errorf(http.StatusBadRequest, "InvalidTemplateDeployment", "", format, args...)
}

// prepare validates a deployment request completely without changing
// anything: template syntax, parameters, every resource body (reference()
// to resources not deployed yet is allowed) and the resource types.
func (e *Engine) prepare(ctx context.Context, id arm.ID, body []byte) (*plan, error) {
	var req request
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, arm.Errorf(400, "InvalidRequestContent", "", "The request body is empty; send {\"properties\": {\"mode\": \"Incremental\", \"template\": {...}, \"parameters\": {...}}}.")
	}
	strict, err := strictJSON(body)
	if err == nil {
		err = json.Unmarshal(strict, &req)
	}
	if err != nil {
		return nil, arm.Errorf(400, "InvalidRequestContent", "", "The request content was invalid and could not be deserialized: %v.", err)
	}
	rp := req.Properties
	if len(rp.TemplateLink) > 0 && string(rp.TemplateLink) != "null" {
		return nil, invalidDeployment("Linked templates (properties.templateLink) are not supported by the emulator: send the template inline in properties.template.")
	}
	if len(rp.ParametersLink) > 0 && string(rp.ParametersLink) != "null" {
		return nil, invalidDeployment("Linked parameter files (properties.parametersLink) are not supported by the emulator: send the parameters inline in properties.parameters.")
	}
	if len(rp.Template) == 0 || string(rp.Template) == "null" {
		return nil, invalidDeployment("The deployment has no template: properties.template is required.")
	}
	p := &plan{id: id, opts: rp.EmulatorOptions, group: id.ResourceGroup}
	switch strings.ToLower(rp.Mode) {
	case "", "incremental":
		p.mode = "Incremental"
	case "complete":
		p.mode = "Complete"
	default:
		return nil, arm.Errorf(400, "InvalidDeploymentMode", "properties.mode", "The deployment mode '%s' is not valid: use Incremental or Complete.", rp.Mode)
	}
	tpl, err := template.Parse(rp.Template)
	if err != nil {
		return nil, invalidTemplate("Deployment template validation failed: %v", err)
	}
	sum := sha256.Sum256(rp.Template)
	p.hash = strconv.FormatUint(binary.BigEndian.Uint64(sum[:8]), 10)
	var params map[string]any
	if len(rp.Parameters) > 0 && string(rp.Parameters) != "null" {
		if params, err = template.ParseParameters(rp.Parameters); err != nil {
			return nil, invalidTemplate("Deployment parameters are not valid: %v", err)
		}
	}
	pre := secretsOf(tpl, params)
	p.log = slog.New(redactHandler{e.log.Handler(), pre})
	d, err := template.Prepare(ctx, tpl, template.Inputs{Params: params}, e.scope(ctx, id, p.log))
	if err != nil {
		return nil, invalidTemplate("Deployment template validation failed: %s", pre.str(err.Error()))
	}
	p.d = d
	p.red = newRedactor(d.Parameters())
	p.log = slog.New(redactHandler{e.log.Handler(), p.red})

	var problems []string
	for _, r := range d.Resources() {
		if !r.Condition {
			continue
		}
		if kindOf(r.Type) == kindUnknown && !p.opts.SkipUnknownResourceTypes {
			problems = append(problems, fmt.Sprintf("%s: resource type '%s' (%s) is not emulated. Emulated types: %s. "+
				"To skip it with a warning, set properties.emulatorOptions.skipUnknownResourceTypes (vmss deployment create --skip-unknown-types).",
				r.Path, r.Type, r.Name, supportedTypes()))
		} else if ae := arm.CheckAPIVersion(r.ID, r.APIVersion, e.location); kindOf(r.Type) != kindUnknown && ae != nil {
			// As ARM's validation: before anything is deployed.
			problems = append(problems, fmt.Sprintf("%s (%s): %s: %s", r.Path, r.Name, ae.Code, ae.Message))
		}
	}
	if len(problems) > 0 {
		return nil, invalidDeployment("%s", p.red.str(strings.Join(problems, "\n")))
	}
	// Evaluate every body now, so an error in the last resource is found
	// before the first one is deployed.
	for _, r := range d.Resources() {
		if !r.Condition {
			continue
		}
		if _, _, err := d.WhatIf(ctx, r); err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return nil, err
			}
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return nil, invalidTemplate("Deployment template validation failed: %s", p.red.str(strings.Join(problems, "\n")))
	}
	p.deps = dependencies(d)
	return p, nil
}

// scope binds a template to the group and answers reference() and listKeys()
// through the API.
func (e *Engine) scope(ctx context.Context, id arm.ID, log *slog.Logger) template.Scope {
	loc := e.location
	if g, err := e.arm.get(ctx, "/subscriptions/"+id.Subscription+"/resourceGroups/"+id.ResourceGroup, ""); err == nil {
		if l, _ := g["location"].(string); l != "" {
			loc = l
		}
	}
	return template.Scope{
		SubscriptionID: e.sub,
		ResourceGroup:  id.ResourceGroup,
		Location:       loc,
		DeploymentName: id.Name(),
		Now:            e.o.Now,
		Logger:         log,
		Reference: func(ctx context.Context, rid, apiVersion string) (map[string]any, error) {
			v, err := e.arm.get(ctx, rid, apiVersion)
			if errors.Is(err, errNotFound) {
				return nil, fmt.Errorf("%s: %w", rid, template.ErrNotDeployed)
			}
			return v, err
		},
		ListKeys: func(ctx context.Context, rid, apiVersion string) (map[string]any, error) {
			v, err := e.arm.post(ctx, rid, "listKeys", apiVersion)
			if errors.Is(err, errNotFound) {
				return nil, fmt.Errorf("%s: %w", rid, template.ErrNotDeployed)
			}
			return v, err
		},
	}
}

// dependencies lists what each resource waits for, as ARM reports it.
func dependencies(d *template.Deployment) []dependency {
	var out []dependency
	for _, r := range d.Resources() {
		if !r.Condition || len(r.DependsOn) == 0 {
			continue
		}
		dep := dependency{ID: r.ID, ResourceType: r.Type, ResourceName: r.Name}
		for _, on := range r.DependsOn {
			x := dependency{ID: on}
			if t, err := d.Lookup(on); err == nil {
				x.ResourceType, x.ResourceName = t.Type, t.Name
			}
			dep.DependsOn = append(dep.DependsOn, x)
		}
		out = append(out, dep)
	}
	return out
}
