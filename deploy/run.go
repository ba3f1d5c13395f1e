package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
	"github.com/vmss-emulator/vmss/template"
)

// Resource outcomes within a run.
const (
	outSucceeded = "succeeded"
	outFailed    = "failed"
	outBlocked   = "blocked"
)

// run is one deployment in progress.
type run struct {
	e     *Engine
	p     *plan
	key   string
	start time.Time

	mu      sync.Mutex
	props   props
	ops     []*operation
	status  map[string]string // lower-cased resource id -> outcome
	blocked []string          // "resource (depends on X, which failed)"
	waiting map[string]string // resource id -> same-level resource it waits for (implicit.go)
	cancel  context.CancelFunc
	gone    bool // the record was deleted while running
}

func (r *run) snapshotOps() (*props, []*operation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.props
	if p.ProvisioningState == stateRunning {
		p.Duration = isoDuration(r.e.o.Now().Sub(r.start))
	}
	ops := make([]*operation, len(r.ops))
	for i, op := range r.ops {
		c := *op
		ops[i] = &c
	}
	return &p, ops
}

// record is the deployment record as stored and answered: every string is
// scrubbed of secure parameter values (a resource name built from one, an
// API message quoting one).
func (r *run) record() *model.Deployment {
	rec := toModel(r.snapshotOps())
	rec.Properties, _ = r.p.red.value(rec.Properties).(map[string]any)
	for i, op := range rec.Operations {
		rec.Operations[i], _ = r.p.red.value(op).(map[string]any)
	}
	return rec
}

// save persists the record. A record deleted while the deployment runs
// (vmss deployment delete) stops the run instead of coming back.
func (r *run) save(first bool) error {
	rec := r.record()
	err := r.e.o.Store.Update(func(st *model.State) error {
		if _, ok := st.Deployments[r.key]; !ok && !first {
			r.mu.Lock()
			r.gone = true
			if r.cancel != nil {
				r.cancel()
			}
			r.mu.Unlock()
			return nil
		}
		if e := st.PutDeployment(r.p.id, rec); e != nil {
			return e
		}
		return nil
	})
	if err != nil {
		r.e.log.Error("could not save deployment record", "deployment", r.p.id.Name(), "err", r.p.red.str(err.Error()))
	}
	return err
}

func (r *run) log() *sl {
	return &sl{r}
}

// sl logs with the deployment's name and group.
type sl struct{ r *run }

func (l *sl) info(msg string, args ...any) {
	l.r.p.log.Info(msg, append([]any{"deployment", l.r.p.id.Name(), "group", l.r.p.group}, args...)...)
}

func (l *sl) warn(msg string, args ...any) {
	l.r.p.log.Warn(msg, append([]any{"deployment", l.r.p.id.Name(), "group", l.r.p.group}, args...)...)
}

// exec deploys level by level and records the outcome.
func (r *run) exec() {
	defer r.e.wg.Done()
	defer func() {
		r.e.mu.Lock()
		delete(r.e.runs, r.key)
		r.e.mu.Unlock()
	}()
	ctx, cancel := context.WithCancel(r.e.ctx)
	defer cancel()
	r.mu.Lock()
	r.cancel = cancel
	r.mu.Unlock()
	d := r.p.d
	levels := d.Levels()
	n := 0
	for _, l := range levels {
		n += len(l)
	}
	r.log().info("deployment started", "mode", r.p.mode, "resources", n, "levels", len(levels))

	for _, level := range levels {
		if ctx.Err() != nil {
			break
		}
		type job struct {
			res *template.Resource
			op  *operation
		}
		var jobs []job
		r.mu.Lock()
		for _, res := range level {
			if dep := r.failedDependency(res); dep != "" {
				r.status[strings.ToLower(res.ID)] = outBlocked
				r.blocked = append(r.blocked, fmt.Sprintf("%s (depends on %s, which was not deployed)", res, dep))
				continue
			}
			op := r.newOp(res.ID, res.Type, res.Name, res.APIVersion, "Create")
			jobs = append(jobs, job{res, op})
		}
		r.mu.Unlock()
		if len(jobs) == 0 {
			continue
		}
		_ = r.save(false) // progress: save logs a failure, and the run goes on
		sem := make(chan struct{}, r.e.o.Parallel)
		var wg sync.WaitGroup
		for _, j := range jobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := r.deployOne(ctx, j.res, j.op, level, sem)
				r.mu.Lock()
				if err != nil {
					r.status[strings.ToLower(j.res.ID)] = outFailed
				} else {
					r.status[strings.ToLower(j.res.ID)] = outSucceeded
				}
				r.mu.Unlock()
			}()
		}
		wg.Wait()
		_ = r.save(false) // progress: save logs a failure, and the run goes on
	}
	r.finish(ctx)
}

// failedDependency names a dependency that did not succeed; r.mu held.
func (r *run) failedDependency(res *template.Resource) string {
	for _, dep := range res.DependsOn {
		if st := r.status[strings.ToLower(dep)]; st == outFailed || st == outBlocked {
			return dep
		}
	}
	return ""
}

// newOp records a running operation; r.mu held.
func (r *run) newOp(id, typ, name, apiVersion, verb string) *operation {
	opID := newOpID()
	op := &operation{ID: r.p.id.String() + "/operations/" + opID, OperationID: opID, Properties: opProps{
		ProvisioningOperation: verb,
		ProvisioningState:     stateRunning,
		Timestamp:             stamp(r.e.o.Now()),
		Duration:              isoDuration(0),
		TargetResource:        &target{ID: id, ResourceType: typ, ResourceName: name, APIVersion: apiVersion},
		started:               r.e.o.Now(),
	}}
	r.ops = append(r.ops, op)
	return op
}

// end completes an operation.
func (r *run) end(op *operation, code string, ae *arm.Error, ws []warning) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.e.o.Now()
	op.Properties.Duration = isoDuration(now.Sub(op.Properties.started))
	op.Properties.Timestamp = stamp(now)
	op.Properties.StatusCode = code
	for i := range ws {
		ws[i].Message = r.p.red.str(ws[i].Message)
	}
	if ae != nil {
		op.Properties.ProvisioningState = stateFailed
		op.Properties.StatusMessage = &statusMessage{Status: stateFailed, Error: r.p.red.err(ae), Warnings: ws}
	} else {
		op.Properties.ProvisioningState = stateSucceeded
		if len(ws) > 0 {
			op.Properties.StatusMessage = &statusMessage{Status: "OK", Warnings: ws}
		}
	}
	r.props.Diagnostics = append(r.props.Diagnostics, ws...)
}

// deployOne evaluates one resource and puts it through the API.
// sem bounds the puts in flight; it is taken only after the resource's
// same-level references are done, so waiting holds no slot.
func (r *run) deployOne(ctx context.Context, res *template.Resource, op *operation, level []*template.Resource, sem chan struct{}) error {
	t0 := r.e.o.Now()
	fail := func(code string, ae *arm.Error, ws []warning) error {
		r.end(op, code, ae, ws)
		r.log().warn("resource failed", "resource", r.p.red.str(res.ID), "err", r.p.red.str(ae.Error()))
		return ae
	}
	body, err := r.p.d.Evaluate(ctx, res)
	if err != nil {
		return fail("BadRequest", &arm.Error{Code: "InvalidTemplate", Message: err.Error(), Target: res.Path}, nil)
	}
	ws := warnings(res.Type, res.ID, body)
	if err := r.awaitReferenced(ctx, res, referenced(body, res, level)); err != nil {
		return fail("Conflict", &arm.Error{Code: "DependencyFailed", Target: res.ID, Message: err.Error()}, ws)
	}
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return fail("Conflict", &arm.Error{Code: "DeploymentInterrupted", Target: res.ID, Message: "The deployment was stopped before this resource started."}, ws)
	}
	defer func() { <-sem }()
	switch kindOf(res.Type) {
	case kindUnknown:
		ws = append(ws, warn("ResourceTypeNotEmulated", res.ID,
			"Resource type %s is not emulated; %s was skipped (emulatorOptions.skipUnknownResourceTypes).", res.Type, res.Name))
		r.end(op, "OK", nil, ws)
	case kindNoop:
		r.end(op, "OK", nil, ws)
	default:
		_, gerr := r.e.arm.get(ctx, res.ID, res.APIVersion)
		if gerr != nil && !errors.Is(gerr, errNotFound) {
			return fail("InternalServerError", arm.AsError(gerr), ws)
		}
		exists := gerr == nil
		dropEnvelope(body)
		tctx, cancel := context.WithTimeout(ctx, r.e.o.ResourceTimeout)
		err := r.e.arm.put(tctx, res.ID, res.APIVersion, body)
		timedOut := tctx.Err() == context.DeadlineExceeded && ctx.Err() == nil
		cancel()
		switch {
		case timedOut:
			return fail("Conflict", &arm.Error{Code: "ResourceDeploymentTimeout", Target: res.ID, Message: fmt.Sprintf(
				"%s did not finish within %s; see its status with GET %s (vmss rest get).", res, r.e.o.ResourceTimeout, res.ID)}, ws)
		case ctx.Err() != nil:
			return fail("Conflict", &arm.Error{Code: "DeploymentInterrupted", Target: res.ID, Message: "The deployment was stopped before this resource finished."}, ws)
		case err != nil:
			ae := arm.AsError(err)
			return fail(statusName(ae.Status), ae, ws)
		}
		code := "OK"
		if !exists {
			code = "Created"
		}
		r.end(op, code, nil, ws)
	}
	r.log().info("resource deployed", "resource", r.p.red.str(res.ID), "took", r.e.o.Now().Sub(t0).Round(time.Millisecond))
	for _, w := range ws {
		r.log().warn("deployment warning", "resource", r.p.red.str(res.ID), "code", w.Code, "message", r.p.red.str(w.Message))
	}
	return nil
}

func statusName(code int) string {
	switch code {
	case 400, 0:
		return "BadRequest"
	case 404:
		return "NotFound"
	case 409:
		return "Conflict"
	case 500:
		return "InternalServerError"
	}
	return fmt.Sprintf("%d", code)
}

// finish evaluates outputs, applies complete mode and records the outcome.
func (r *run) finish(ctx context.Context) {
	var failed, succeeded []string
	var details []*arm.Error
	r.mu.Lock()
	for _, res := range r.p.d.Resources() {
		switch r.status[strings.ToLower(res.ID)] {
		case outSucceeded:
			succeeded = append(succeeded, res.String())
			r.props.OutputResources = append(r.props.OutputResources, resourceRef{ID: res.ID})
		case outFailed:
			failed = append(failed, res.String())
		}
	}
	for _, op := range r.ops {
		if op.Properties.ProvisioningState == stateFailed && op.Properties.StatusMessage != nil && op.Properties.StatusMessage.Error != nil {
			e := *op.Properties.StatusMessage.Error
			if e.Target == "" {
				e.Target = op.Properties.TargetResource.ID
			}
			details = append(details, &e)
		}
	}
	blocked := append([]string(nil), r.blocked...)
	gone := r.gone
	r.mu.Unlock()
	if gone {
		r.log().warn("deployment record deleted while running; stopped")
		return
	}

	var fail *arm.Error
	switch {
	case r.e.ctx.Err() != nil:
		fail = &arm.Error{Code: "DeploymentInterrupted", Message: "The vmss daemon stopped while this deployment was running. " +
			"Resources deployed before the stop stay as they are. Run the deployment again: it converges."}
	case len(failed) > 0 || len(blocked) > 0:
		msg := "At least one resource deployment operation failed. Failed: " + strings.Join(failed, ", ") + "."
		if len(blocked) > 0 {
			msg += " Not deployed because a dependency failed: " + strings.Join(blocked, ", ") + "."
		}
		if len(succeeded) > 0 {
			msg += " Succeeded: " + strings.Join(succeeded, ", ") + "."
		} else {
			msg += " No resource succeeded."
		}
		msg += " Details are in the operations (vmss deployment show, GET .../operations); fix the cause and run the deployment again: it converges."
		fail = &arm.Error{Code: "DeploymentFailed", Message: msg, Details: details}
	}
	if fail == nil {
		outs, err := r.p.d.Outputs(ctx)
		if err != nil {
			fail = &arm.Error{Code: "DeploymentOutputEvaluationFailed", Message: fmt.Sprintf("Unable to evaluate template outputs: %v", err)}
		} else if len(outs) > 0 {
			m := map[string]any{}
			for name, o := range outs {
				v := map[string]any{"type": o.Type}
				if !o.Secure {
					v["value"] = o.Value
				}
				m[name] = v
			}
			r.mu.Lock()
			r.props.Outputs = m
			r.mu.Unlock()
		}
	}
	if fail == nil && r.p.mode == "Complete" {
		if err := r.complete(ctx); err != nil {
			fail = &arm.Error{Code: "DeploymentFailed", Message: "Complete mode could not remove resources that are not in the template: " + err.Error()}
		}
	}
	r.mu.Lock()
	r.props.Duration = isoDuration(r.e.o.Now().Sub(r.start))
	if fail != nil {
		r.props.ProvisioningState = stateFailed
		r.props.Error = r.p.red.err(fail)
	} else {
		r.props.ProvisioningState = stateSucceeded
	}
	state, dur := r.props.ProvisioningState, r.props.Duration
	r.mu.Unlock()
	_ = r.save(false) // save logs a failure; the outcome is also in the log below
	if fail != nil {
		r.log().warn("deployment failed", "duration", dur, "err", r.p.red.str(fail.Message))
	} else {
		r.log().info("deployment ended", "state", state, "duration", dur)
	}
}

// deleteOrder is complete mode's order: instances first (scale sets and
// VMs), then what they used.
var deleteOrder = []string{
	"microsoft.compute/virtualmachinescalesets|microsoft.compute/virtualmachines",
	"microsoft.network/networkinterfaces",
	"microsoft.network/loadbalancers",
	"microsoft.network/publicipaddresses",
	"microsoft.network/virtualnetworks",
}

// complete deletes the group's resources that the template does not name.
func (r *run) complete(ctx context.Context) error {
	extra, err := r.e.extraResources(ctx, r.p)
	if err != nil {
		return err
	}
	phases := make([][]map[string]any, len(deleteOrder)+1)
	for _, it := range extra {
		typ := strings.ToLower(fmt.Sprint(it["type"]))
		ph := len(deleteOrder)
		for i, ts := range deleteOrder {
			for _, t := range strings.Split(ts, "|") {
				if t == typ {
					ph = i
				}
			}
		}
		phases[ph] = append(phases[ph], it)
	}
	var errs []error
	for _, items := range phases {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, it := range items {
			id, typ, name := fmt.Sprint(it["id"]), fmt.Sprint(it["type"]), fmt.Sprint(it["name"])
			r.mu.Lock()
			op := r.newOp(id, typ, name, "", "Delete")
			r.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				tctx, cancel := context.WithTimeout(ctx, r.e.o.ResourceTimeout)
				defer cancel()
				if err := r.e.arm.del(tctx, id, ""); err != nil {
					ae := arm.AsError(err)
					r.end(op, statusName(ae.Status), ae, nil)
					mu.Lock()
					errs = append(errs, fmt.Errorf("delete %s: %w", id, err))
					mu.Unlock()
					return
				}
				r.end(op, "OK", nil, nil)
				r.log().info("resource deleted (complete mode)", "resource", r.p.red.str(id))
			}()
		}
		_ = r.save(false) // progress: save logs a failure, and the run goes on
		wg.Wait()
		if len(errs) > 0 {
			break
		}
	}
	return errors.Join(errs...)
}

// extraResources lists the group's resources the template does not name
// (resources whose condition is false count as named, as in Azure).
func (e *Engine) extraResources(ctx context.Context, p *plan) ([]map[string]any, error) {
	keep := map[string]bool{}
	for _, res := range p.d.Resources() {
		id, err := arm.ParseID(res.ID)
		if err != nil {
			continue
		}
		for ; len(id.Types) > 0; id = id.Parent() {
			keep[id.Key()] = true
		}
	}
	items, err := e.arm.list(ctx, "/subscriptions/"+p.id.Subscription+"/resourceGroups/"+p.id.ResourceGroup+"/resources")
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for _, it := range items {
		id := fmt.Sprint(it["id"])
		if !keep[strings.ToLower(id)] {
			out = append(out, it)
		}
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]["id"]) < fmt.Sprint(out[j]["id"]) })
	return out, nil
}

// dropEnvelope removes what a template resource carries beside the ARM body
// (type, name, apiVersion, id), in any case.
func dropEnvelope(body map[string]any) {
	maps.DeleteFunc(body, func(k string, _ any) bool {
		switch strings.ToLower(k) {
		case "type", "name", "apiversion", "id":
			return true
		}
		return false
	})
}
