package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
	"github.com/vmss-emulator/vmss/template"
)

// Provisioning states of a deployment and of its operations.
const (
	stateAccepted  = "Accepted"
	stateRunning   = "Running"
	stateSucceeded = "Succeeded"
	stateFailed    = "Failed"
)

// props are a deployment's properties as ARM answers them.
type props struct {
	TemplateHash      string           `json:"templateHash"`
	Parameters        map[string]any   `json:"parameters"`
	Mode              string           `json:"mode"`
	ProvisioningState string           `json:"provisioningState"`
	Timestamp         string           `json:"timestamp"`
	Duration          string           `json:"duration"`
	CorrelationID     string           `json:"correlationId"`
	Outputs           map[string]any   `json:"outputs,omitempty"`
	OutputResources   []resourceRef    `json:"outputResources,omitempty"`
	Dependencies      []dependency     `json:"dependencies,omitempty"`
	Diagnostics       []warning        `json:"diagnostics,omitempty"`
	Error             *arm.Error       `json:"error,omitempty"`
	EmulatorOptions   *emulatorOptions `json:"emulatorOptions,omitempty"`
}

type resourceRef struct {
	ID string `json:"id"`
}

type dependency struct {
	ID           string       `json:"id"`
	ResourceType string       `json:"resourceType"`
	ResourceName string       `json:"resourceName"`
	DependsOn    []dependency `json:"dependsOn,omitempty"`
}

type emulatorOptions struct {
	SkipUnknownResourceTypes bool `json:"skipUnknownResourceTypes,omitempty"`
}

// operation is one deployment operation (GET .../deployments/{name}/operations).
type operation struct {
	ID          string  `json:"id"`
	OperationID string  `json:"operationId"`
	Properties  opProps `json:"properties"`
}

type opProps struct {
	ProvisioningOperation string         `json:"provisioningOperation"`
	ProvisioningState     string         `json:"provisioningState"`
	Timestamp             string         `json:"timestamp"`
	Duration              string         `json:"duration"`
	StatusCode            string         `json:"statusCode,omitempty"`
	StatusMessage         *statusMessage `json:"statusMessage,omitempty"`
	TargetResource        *target        `json:"targetResource,omitempty"`
	started               time.Time
}

type statusMessage struct {
	Status   string     `json:"status"`
	Error    *arm.Error `json:"error,omitempty"`
	Warnings []warning  `json:"warnings,omitempty"`
}

type target struct {
	ID           string `json:"id"`
	ResourceType string `json:"resourceType"`
	ResourceName string `json:"resourceName"`
	APIVersion   string `json:"apiVersion,omitempty"`
}

// toModel converts a record into the model's form.
func toModel(p *props, ops []*operation) *model.Deployment {
	d := &model.Deployment{Properties: toMap(p)}
	for _, op := range ops {
		d.Operations = append(d.Operations, toMap(op))
	}
	return d
}

// fromModel reads a stored record.
func fromModel(d *model.Deployment) (*props, []*operation) {
	var p props
	fromMap(d.Properties, &p)
	var ops []*operation
	for _, m := range d.Operations {
		var op operation
		fromMap(m, &op)
		ops = append(ops, &op)
	}
	return &p, ops
}

func toMap(v any) map[string]any {
	// Round-tripping our own types (no channels, funcs or cycles) cannot fail.
	data, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return m
}

func fromMap(m map[string]any, v any) {
	// A map decoded from JSON encodes; fields of another type are left zero.
	data, _ := json.Marshal(m)
	_ = json.Unmarshal(data, v)
}

// resource renders the deployment resource.
func resource(id arm.ID, p any) map[string]any {
	return map[string]any{
		"id":         id.String(),
		"name":       id.Name(),
		"type":       arm.TypeDeployment,
		"properties": p,
	}
}

// isoDuration formats a duration as ARM does (PT1M2.345S).
func isoDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Millisecond)
	var b strings.Builder
	b.WriteString("PT")
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dH", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dM", m)
		d -= m * time.Minute
	}
	s := fmt.Sprintf("%.3f", d.Seconds())
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	b.WriteString(s + "S")
	return b.String()
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// redactor removes secure parameter values from text.
type redactor struct{ secrets []string }

func newRedactor(params []template.ParamValue) *redactor {
	r := &redactor{}
	for _, p := range params {
		if p.Secure {
			r.collect(p.Value)
		}
	}
	// Longest first, so a secret containing another is replaced whole.
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
	return r
}

func (r *redactor) collect(v any) {
	switch x := v.(type) {
	case string:
		if len(x) >= 3 {
			r.secrets = append(r.secrets, x)
		}
	case map[string]any:
		for _, e := range x {
			r.collect(e)
		}
	case []any:
		for _, e := range x {
			r.collect(e)
		}
	}
}

func (r *redactor) str(s string) string {
	if r == nil {
		return s
	}
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, "***")
	}
	return s
}

// err returns an ARM error with its messages scrubbed.
func (r *redactor) err(e *arm.Error) *arm.Error {
	if e == nil {
		return nil
	}
	c := *e
	c.Message, c.Target = r.str(c.Message), r.str(c.Target)
	c.Details = nil
	for _, d := range e.Details {
		c.Details = append(c.Details, r.err(d))
	}
	return &c
}

// value scrubs secrets from any JSON-like value (what-if answers).
func (r *redactor) value(v any) any {
	switch x := v.(type) {
	case string:
		return r.str(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = r.value(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.value(e)
		}
		return out
	}
	return v
}

// paramRecord is the parameters section of a record: values, with secure
// ones reduced to their type as Azure answers them.
func paramRecord(params []template.ParamValue) map[string]any {
	out := map[string]any{}
	for _, p := range params {
		typ := map[string]string{"string": "String", "securestring": "SecureString", "int": "Int", "bool": "Bool",
			"object": "Object", "secureobject": "SecureObject", "array": "Array"}[strings.ToLower(p.Type)]
		if p.Secure {
			out[p.Name] = map[string]any{"type": typ}
			continue
		}
		out[p.Name] = map[string]any{"type": typ, "value": p.Value}
	}
	return out
}

// secretsOf collects the values given for a template's secure parameters,
// before the template is prepared (so even its debug records are scrubbed).
func secretsOf(tpl *template.Template, params map[string]any) *redactor {
	r := &redactor{}
	for name, v := range params {
		for pn, decl := range tpl.Parameters {
			if strings.EqualFold(pn, name) && decl.Secure() {
				r.collect(v)
			}
		}
	}
	for _, decl := range tpl.Parameters {
		if decl.Secure() && decl.HasDefault {
			r.collect(decl.DefaultValue)
		}
	}
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
	return r
}

// redactHandler scrubs secure values from log records.
type redactHandler struct {
	h   slog.Handler
	red *redactor
}

func (h redactHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.red.str(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h redactHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.red.str(v.String()))
	case slog.KindGroup:
		var as []any
		for _, x := range v.Group() {
			as = append(as, h.attr(x))
		}
		return slog.Group(a.Key, as...)
	case slog.KindAny:
		s := fmt.Sprint(v.Any())
		if r := h.red.str(s); r != s {
			return slog.String(a.Key, r)
		}
	}
	return a
}

func (h redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = h.attr(a)
	}
	return redactHandler{h.h.WithAttrs(out), h.red}
}

func (h redactHandler) WithGroup(name string) slog.Handler {
	return redactHandler{h.h.WithGroup(name), h.red}
}
