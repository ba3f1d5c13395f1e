package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vmss-emulator/vmss/api"
	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// Options configure an Engine. Handler and Store are required.
type Options struct {
	// Handler is the daemon's API (an *api.Server); every change goes through it.
	Handler http.Handler
	// Store holds the deployment records.
	Store *model.Store
	// Logger receives one record per deployment and per resource (never
	// parameter values); nil discards.
	Logger *slog.Logger
	// PollInterval is how often a resource's operation is polled; 0 means 100ms.
	PollInterval time.Duration
	// ResourceTimeout bounds the wait for one resource (a scale set's
	// instances running, say); 0 means 30 minutes.
	ResourceTimeout time.Duration
	// Parallel is how many resources of one level are deployed at once; 0 means 16.
	Parallel int
	// Now is the clock of records and utcNow(); nil means time.Now.
	Now func() time.Time
}

// Engine runs template deployments. It implements api.Deployer.
type Engine struct {
	o        Options
	arm      *armClient
	sub      string
	location string
	log      *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	runs map[string]*run // lower-cased deployment id -> running deployment
}

var _ api.Deployer = (*Engine)(nil)

// New returns an engine. Deployments the store records as still running
// (the daemon stopped during them) are marked Failed with a message saying
// so: their resources stay as far as they got, and running the deployment
// again converges.
func New(o Options) (*Engine, error) {
	if o.Handler == nil || o.Store == nil {
		return nil, errors.New("deploy.New: Options.Handler and Options.Store are required")
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 100 * time.Millisecond
	}
	if o.ResourceTimeout <= 0 {
		o.ResourceTimeout = 30 * time.Minute
	}
	if o.Parallel <= 0 {
		o.Parallel = 16
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var cfg model.Config
	o.Store.View(func(st *model.State) { cfg = st.Config() })
	e := &Engine{o: o, sub: cfg.Subscription, location: cfg.Location, log: log, runs: map[string]*run{}}
	e.arm = newARMClient(o.Handler, cfg.Subscription, o.PollInterval)
	e.ctx, e.cancel = context.WithCancel(context.Background())
	if err := e.failInterrupted(); err != nil {
		return nil, err
	}
	return e, nil
}

// Close stops running deployments (they are recorded as interrupted) and
// waits for them.
func (e *Engine) Close() error {
	e.cancel()
	e.wg.Wait()
	return nil
}

func (e *Engine) failInterrupted() error {
	now := e.o.Now()
	return e.o.Store.Update(func(st *model.State) error {
		for _, rec := range st.Deployments {
			p, ops := fromModel(rec)
			if p.ProvisioningState != stateRunning && p.ProvisioningState != stateAccepted {
				continue
			}
			id, err := arm.ParseID(rec.ID)
			if err != nil {
				continue
			}
			for _, op := range ops {
				if op.Properties.ProvisioningState == stateRunning {
					op.Properties.ProvisioningState = stateFailed
					op.Properties.StatusCode = "Conflict"
					op.Properties.StatusMessage = &statusMessage{Status: stateFailed, Error: &arm.Error{Code: "DeploymentInterrupted",
						Message: "The daemon stopped while this resource was being deployed."}}
				}
			}
			p.ProvisioningState = stateFailed
			p.Error = &arm.Error{Code: "DeploymentInterrupted", Message: fmt.Sprintf(
				"The vmss daemon stopped while deployment %s was running (started %s). Resources deployed before the stop stay as they are. "+
					"Run the deployment again: it converges.", id.Name(), p.Timestamp)}
			if t, err := time.Parse(time.RFC3339Nano, p.Timestamp); err == nil {
				p.Duration = isoDuration(now.Sub(t))
			}
			if e := st.PutDeployment(id, toModel(p, ops)); e != nil {
				return e
			}
			e.log.Warn("deployment interrupted by a daemon stop; marked Failed", "deployment", id.Name(), "group", id.ResourceGroup)
		}
		return nil
	})
}

// Put validates the deployment and starts it in the background. It answers
// the deployment resource (provisioningState Running); the API's operation
// follows Pending.
func (e *Engine) Put(ctx context.Context, id arm.ID, body []byte) (any, error) {
	key := id.Key()
	if e.running(key) {
		return nil, deploymentActive(id)
	}
	p, err := e.prepare(ctx, id, body)
	if err != nil {
		return nil, err
	}
	now := e.o.Now()
	r := &run{e: e, p: p, key: key, start: now, status: map[string]string{}}
	r.props = props{
		TemplateHash:      p.hash,
		Parameters:        paramRecord(p.d.Parameters()),
		Mode:              p.mode,
		ProvisioningState: stateRunning,
		Timestamp:         stamp(now),
		Duration:          isoDuration(0),
		CorrelationID:     newUUID(),
		Dependencies:      p.deps,
	}
	if p.opts.SkipUnknownResourceTypes {
		r.props.EmulatorOptions = &p.opts
	}
	e.mu.Lock()
	if e.runs[key] != nil {
		e.mu.Unlock()
		return nil, deploymentActive(id)
	}
	e.runs[key] = r
	e.mu.Unlock()
	if err := r.save(true); err != nil {
		e.mu.Lock()
		delete(e.runs, key)
		e.mu.Unlock()
		return nil, err
	}
	out := resource(id, r.record().Properties)
	e.wg.Add(1)
	go r.exec()
	return out, nil
}

// Validate checks the deployment as Put does (template, parameters, every
// resource body and type) without deploying or recording anything, and
// answers the deployment as ARM's validate does: provisioningState
// Succeeded and the resources it would deploy in validatedResources.
func (e *Engine) Validate(ctx context.Context, id arm.ID, body []byte) (any, error) {
	p, err := e.prepare(ctx, id, body)
	if err != nil {
		return nil, err
	}
	var validated []resourceRef
	for _, r := range p.d.Resources() {
		if r.Condition {
			validated = append(validated, resourceRef{ID: r.ID})
		}
	}
	return resource(id, map[string]any{
		"templateHash":       p.hash,
		"parameters":         paramRecord(p.d.Parameters()),
		"mode":               p.mode,
		"provisioningState":  "Succeeded",
		"timestamp":          stamp(e.o.Now()),
		"duration":           isoDuration(0),
		"correlationId":      newUUID(),
		"dependencies":       p.deps,
		"validatedResources": validated,
	}), nil
}

func deploymentActive(id arm.ID) error {
	return arm.Errorf(http.StatusConflict, "DeploymentActive", id.String(),
		"Unable to edit or replace deployment '%s': the previous deployment is still running. Wait for it to end (vmss deployment show -n %s).", id.Name(), id.Name())
}

func (e *Engine) running(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.runs[key] != nil
}

func notFound(id arm.ID) error {
	return arm.Errorf(http.StatusNotFound, "DeploymentNotFound", id.String(), "Deployment '%s' could not be found in resource group '%s'.", id.Name(), id.ResourceGroup)
}

// record reads a stored deployment.
func (e *Engine) record(id arm.ID) (*props, []*operation, bool) {
	var rec *model.Deployment
	e.o.Store.View(func(st *model.State) {
		if d, ok := st.Deployments[id.Key()]; ok {
			rec = d
		}
	})
	if rec == nil {
		return nil, nil, false
	}
	p, ops := fromModel(rec)
	return p, ops, true
}

// Get answers the deployment resource.
func (e *Engine) Get(_ context.Context, id arm.ID) (any, error) {
	if r := e.run(id.Key()); r != nil {
		return resource(id, r.record().Properties), nil
	}
	p, _, ok := e.record(id)
	if !ok {
		return nil, notFound(id)
	}
	return resource(id, p), nil
}

func (e *Engine) run(key string) *run {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.runs[key]
}

// List answers the deployments of a resource group, by name.
func (e *Engine) List(_ context.Context, group string) (any, error) {
	var recs []*model.Deployment
	e.o.Store.View(func(st *model.State) {
		for _, d := range st.Deployments {
			if id, err := arm.ParseID(d.ID); err == nil && strings.EqualFold(id.ResourceGroup, group) {
				recs = append(recs, d)
			}
		}
	})
	sort.Slice(recs, func(i, j int) bool { return strings.ToLower(recs[i].Name) < strings.ToLower(recs[j].Name) })
	out := []any{}
	for _, d := range recs {
		id, _ := arm.ParseID(d.ID) // stored ids were parsed when the deployment was put
		if r := e.run(id.Key()); r != nil {
			out = append(out, resource(id, r.record().Properties))
			continue
		}
		p, _ := fromModel(d)
		out = append(out, resource(id, p))
	}
	return map[string]any{"value": out}, nil
}

// Operations answers the deployment's operations: one per resource.
func (e *Engine) Operations(_ context.Context, id arm.ID) (any, error) {
	ops := []any{}
	if r := e.run(id.Key()); r != nil {
		for _, op := range r.record().Operations {
			ops = append(ops, op)
		}
		return map[string]any{"value": ops}, nil
	}
	_, recOps, ok := e.record(id)
	if !ok {
		return nil, notFound(id)
	}
	for _, op := range recOps {
		ops = append(ops, op)
	}
	return map[string]any{"value": ops}, nil
}

// Pending reports whether a deployment runs, and its error once it failed.
func (e *Engine) Pending(key string) (bool, error) {
	if e.running(key) {
		return true, nil
	}
	var rec *model.Deployment
	e.o.Store.View(func(st *model.State) { rec = st.Deployments[key] })
	if rec == nil {
		return false, nil
	}
	p, _ := fromModel(rec)
	if p.ProvisioningState == stateFailed {
		if p.Error != nil {
			c := *p.Error
			c.Status = http.StatusBadRequest
			return false, &c
		}
		return false, arm.Errorf(http.StatusBadRequest, "DeploymentFailed", key, "The deployment failed.")
	}
	return false, nil
}

// wait blocks until the deployment is no longer running.
func (e *Engine) wait(ctx context.Context, id arm.ID) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for e.running(id.Key()) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b) // crypto/rand.Read never returns an error
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

func newOpID() string {
	b := make([]byte, 8)
	rand.Read(b) // crypto/rand.Read never returns an error
	return strings.ToUpper(hex.EncodeToString(b))
}
