package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// Options tune a Reconciler. Zero values take the defaults given.
type Options struct {
	Parallel int           // kernel operations at once; default DefaultParallel
	Resync   time.Duration // periodic pass even without changes; default 10s
	Backoff  time.Duration // first retry delay after a failure; default 1s, doubling up to BackoffMax
	// BackoffMax caps the retry delay; default 1 minute.
	BackoffMax time.Duration
	Plan       PlanOptions
	Logger     *slog.Logger
	// OnPass is called after every pass (the instances' status may have
	// changed), e.g. to update a live view.
	OnPass func()
}

// DefaultParallel is how many instances are created or deleted at once. A
// creation mostly waits (for the disk, for the kernel's network
// configuration lock), so more at once than there are cores: 64 created
// 1,000 instances twice as fast as 16 on 2 cores.
const DefaultParallel = 64

// Reconciler drives the Kernel toward the Store's desired state.
type Reconciler struct {
	store  *model.Store
	kernel Kernel
	opt    Options
	log    *slog.Logger

	trigger chan struct{}
	sem     chan struct{}
	retry   *retries // pacing and logging of failing steps
	wg      sync.WaitGroup

	mu         sync.Mutex
	inst       map[string]*status // by netns
	vnetDone   map[string]string  // netns -> spec fingerprint applied
	vnetErr    map[string]error   // vnet key -> error
	planErr    map[string]error   // resource key -> data plane error
	pending    map[string]bool    // resource key -> work left (as of the last pass)
	failed     map[string]error   // resource key -> failure
	applied    int64
	flowsEnded uint64                     // flows ended so far: a pass observing before one ended skips its instance
	removed    []removal                  // model records to drop, collected by flows
	rolled     map[string]time.Time       // scale set key -> when its last rolling batch started
	rolling    map[string]*RollingUpgrade // scale set key -> its latest rolling upgrade

	// snap is the last snapshot of the state and desired the instances it
	// wants, reused by passes while the state's Seq does not move (copying
	// and deriving them costs in proportion to the instances).
	snapMu  sync.Mutex
	snap    *model.State
	desired []*Desired

	// What passes observe of the kernel (see observe). touched (under mu)
	// are the instances whose flows ended since the last observation; kobs
	// (under passMu, as fullAt) is the kernel as last observed, kept up to
	// date for the touched instances between full observations.
	touched map[string]bool
	passMu  sync.Mutex
	kobs    map[string]Observed
	fullAt  time.Time
}

type status struct {
	probeHealth bool   // health comes from a load-balancer probe
	prov        string // Creating, Updating, Succeeded, Failed, Deleting
	power       string
	err         error
	busy        bool
	ended       uint64 // flowsEnded when its last flow ended
	leaving     bool   // draining, stopping or deleting: no new traffic
	failures    int
	retryAt     time.Time
	obs         Observed
	// health is the instance's health from its scale set's health source
	// (load-balancer probe or Application Health extension).
	health string
	// unhealthy is when the instance was first seen Unhealthy while no
	// change of it was in flight (zero while healthy, unknown or changing),
	// for automatic repairs: their grace period counts from there.
	unhealthy time.Time
}

type removal struct {
	setKey, id string // scale-set instance
	vmKey      string // standalone VM
}

// New returns a Reconciler. Call Run to start it.
func New(store *model.Store, kernel Kernel, opt Options) *Reconciler {
	if opt.Parallel <= 0 {
		opt.Parallel = DefaultParallel
	}
	if opt.Resync <= 0 {
		opt.Resync = 10 * time.Second
	}
	if opt.Backoff <= 0 {
		opt.Backoff = time.Second
	}
	if opt.BackoffMax <= 0 {
		opt.BackoffMax = time.Minute
	}
	if opt.Plan.DefaultDrain <= 0 {
		opt.Plan.DefaultDrain = 5 * time.Second
	}
	lg := opt.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	r := &Reconciler{
		store: store, kernel: kernel, opt: opt, log: lg,
		trigger:  make(chan struct{}, 1),
		sem:      make(chan struct{}, opt.Parallel),
		inst:     map[string]*status{},
		vnetDone: map[string]string{},
		vnetErr:  map[string]error{},
		planErr:  map[string]error{},
		pending:  map[string]bool{},
		failed:   map[string]error{},
		rolled:   map[string]time.Time{},
		rolling:  map[string]*RollingUpgrade{},
		touched:  map[string]bool{},
		applied:  -1,
		retry:    newRetries(opt.Backoff, opt.BackoffMax, lg),
	}
	store.OnChange(r.Trigger)
	return r
}

// Trigger asks for a pass soon.
func (r *Reconciler) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Run reconciles until ctx ends, then waits for work in flight.
func (r *Reconciler) Run(ctx context.Context) {
	t := time.NewTicker(r.opt.Resync)
	defer t.Stop()
	r.Trigger()
	var last time.Duration // how long the last pass took
	for {
		select {
		case <-ctx.Done():
			r.wg.Wait()
			return
		case <-r.trigger:
		case <-t.C:
		}
		// Let a burst of changes coalesce into one pass: every instance
		// whose work ends asks for one, and a pass costs in proportion to
		// the instances, so passes back to back would take a core while
		// thousands are created. Waiting twice as long as the last pass
		// took keeps passes to a third of a core at most.
		select {
		case <-ctx.Done():
		case <-time.After(passPause(last)):
		}
		start := time.Now()
		_ = r.guard("reconciling", func() error { r.pass(ctx, false); return nil })
		if r.opt.OnPass != nil {
			r.opt.OnPass()
		}
		last = time.Since(start)
	}
}

// passPause is the wait before a pass after one that took last: twice
// that, at least 2 ms and at most half a second.
func passPause(last time.Duration) time.Duration {
	return min(max(2*last, 2*time.Millisecond), 500*time.Millisecond)
}

// Wait blocks until no work is in flight.
func (r *Reconciler) Wait() { r.wg.Wait() }

// snapshot deep-copies the state, and returns the instances it wants; both
// are shared by passes until the state changes, and nobody changes them.
func (r *Reconciler) snapshot() (*model.State, []*Desired) {
	r.snapMu.Lock()
	defer r.snapMu.Unlock()
	var data []byte
	var cfg model.Config
	r.store.View(func(st *model.State) {
		if r.snap != nil && r.snap.Seq == st.Seq {
			return
		}
		data, _ = json.Marshal(st) // the state is persisted as JSON: it always marshals
		cfg = st.Config()
	})
	if data == nil {
		return r.snap, r.desired
	}
	var s model.State
	_ = json.Unmarshal(data, &s) // what was just marshalled unmarshals
	s.SetConfig(cfg)
	r.snap, r.desired = &s, DesiredInstances(&s)
	return r.snap, r.desired
}

// Pass runs one reconciliation pass: it starts work and returns without
// waiting for it. It observes every instance in the kernel.
func (r *Reconciler) Pass(ctx context.Context) { r.pass(ctx, true) }

// pass is Pass; without full, and with a kernel that can look at some
// instances only (InstanceLooker), it lists every instance only when the
// last full observation is Options.Resync old, and otherwise looks at the
// instances whose flows ended since the last observation (see observe).
func (r *Reconciler) pass(ctx context.Context, full bool) {
	r.passMu.Lock()
	defer r.passMu.Unlock()
	snap, desired := r.snapshot()
	obs, observedAt, err := r.observe(ctx, full)
	if ctx.Err() != nil {
		return // shutting down: not an error
	}
	if err != nil {
		r.log.Error("observe instances", "err", err)
		return
	}
	kvnets, err := r.kernel.VNets(ctx)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		r.log.Error("observe VNETs", "err", err)
		return
	}
	// VNETs first: instances attach to them.
	wantVNet := r.ensureVNets(ctx, snap, kvnets)
	if ctx.Err() != nil {
		return
	}
	r.startInstanceWork(ctx, desired, obs, observedAt)
	r.deleteUnwantedVNets(ctx, kvnets, wantVNet, desired, obs)
	planErr := r.applyDataPlane(ctx, snap, desired, obs)
	// Feedback into the model: settle overprovisioning, drop deleted records,
	// finish group deletes.
	r.feedback(snap)
	r.recordProgress(snap, desired, kvnets, wantVNet, planErr)
}

// observe answers what exists of the instances in the kernel, and
// flowsEnded before it looked (see startInstanceWork); r.passMu must be
// held. The kernel changes through the flows, which touch their instance
// when they end, and behind the reconciler's back (drift: a namespace
// removed by hand, a crash). A full observation lists every instance and
// sees both; between full observations, every Options.Resync, only the
// touched instances are looked at, and the rest is as last observed: an
// instance no flow touched since is where the last observation saw it,
// unless it drifted, which the next full observation sees. What the kernel
// reports on its own (health, probe states) is as fresh as the last look
// at the instance, Resync old at most.
func (r *Reconciler) observe(ctx context.Context, full bool) (map[string]Observed, uint64, error) {
	r.mu.Lock()
	observedAt := r.flowsEnded
	touched := r.touched
	r.touched = map[string]bool{}
	r.mu.Unlock()
	untouch := func() { // not looked at after all: the next pass does
		r.mu.Lock()
		maps.Copy(r.touched, touched)
		r.mu.Unlock()
	}
	look, ok := r.kernel.(InstanceLooker)
	if full || !ok || r.kobs == nil || time.Since(r.fullAt) >= r.opt.Resync {
		start := time.Now()
		obs, err := r.kernel.Instances(ctx)
		if err != nil || ctx.Err() != nil {
			untouch()
			return nil, 0, err
		}
		r.kobs, r.fullAt = obs, start
		return obs, observedAt, nil
	}
	if len(touched) > 0 {
		names := slices.Sorted(maps.Keys(touched))
		got, err := look.LookInstances(ctx, names)
		if err != nil || ctx.Err() != nil {
			untouch()
			return nil, 0, err
		}
		for _, n := range names {
			if o, ok := got[n]; ok {
				r.kobs[n] = o
			} else {
				delete(r.kobs, n)
			}
		}
	}
	return r.kobs, observedAt, nil
}

// ensureVNets creates or updates every VNET of the state whose spec changed
// (or whose namespace is missing), and returns the VNET namespaces wanted.
func (r *Reconciler) ensureVNets(ctx context.Context, snap *model.State, kvnets []string) map[string]bool {
	wantVNet := map[string]bool{}
	for _, v := range VNetSpecs(snap) {
		wantVNet[v.Netns] = true
		fp := fingerprint(v)
		r.mu.Lock()
		done := r.vnetDone[v.Netns] == fp
		r.mu.Unlock()
		if done && contains(kvnets, v.Netns) {
			continue
		}
		key := "vnet:" + v.Netns
		if !r.retry.due(key, time.Now()) {
			continue
		}
		err := r.guard("ensuring VNET "+v.Netns, func() error { return r.kernel.EnsureVNet(ctx, v) })
		if ctx.Err() != nil {
			return nil // stopping: the caller ends the pass
		}
		r.mu.Lock()
		if err != nil {
			r.vnetErr[v.Key] = err
			delete(r.vnetDone, v.Netns)
			r.retry.failed(key, "VNET "+v.Netns, err, time.Now(), "netns", v.Netns)
		} else {
			delete(r.vnetErr, v.Key)
			r.vnetDone[v.Netns] = fp
			r.retry.succeeded(key)
		}
		r.mu.Unlock()
	}
	return wantVNet
}

// startInstanceWork compares each desired instance with what exists and
// starts the flow that closes the gap (build, start, restart, stop,
// delete); instances the state does not know are deleted.
//
// observedAt is flowsEnded before obs was read: an instance whose flow ended
// since was observed before that flow's last kernel change, so it is left to
// the pass the flow's end triggers (acting on it would redo the flow's work,
// e.g. remove the build the flow just made).
func (r *Reconciler) startInstanceWork(ctx context.Context, desired []*Desired, obs map[string]Observed, observedAt uint64) {
	want := map[string]*Desired{}
	for _, d := range desired {
		want[d.Spec.Netns] = d
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range desired {
		r.stepLocked(ctx, d, obs, now, observedAt)
	}
	// Orphans: instances in the kernel the state does not know.
	for netns := range obs {
		if _, ok := want[netns]; ok {
			continue
		}
		st := r.statusLocked(netns)
		if st.busy || st.ended > observedAt {
			continue
		}
		orphan := &Desired{Spec: InstanceSpec{Netns: netns}, Deleting: true}
		r.spawnLocked(ctx, orphan, st, "Deleting", r.deleteFlow)
	}
	for netns, st := range r.inst {
		if _, ok := want[netns]; !ok && !st.busy {
			if _, ok := obs[netns]; !ok {
				delete(r.inst, netns)
			}
		}
	}
}

// stepLocked records what was observed of one desired instance and starts
// its next piece of work, unless one runs or it waits to retry; r.mu must be
// held.
func (r *Reconciler) stepLocked(ctx context.Context, d *Desired, obs map[string]Observed, now time.Time, observedAt uint64) {
	st := r.statusLocked(d.Spec.Netns)
	if st.ended > observedAt {
		return // observed before its last flow ended: stale
	}
	o, exists := obs[d.Spec.Netns]
	st.obs = o
	st.health = instanceHealth(d.HealthProbe, o)
	st.probeHealth = d.HealthProbe != ""
	switch {
	case st.health == "Unhealthy" && !st.busy && st.unhealthy.IsZero():
		st.unhealthy = now
	case st.health != "Unhealthy" || st.busy:
		st.unhealthy = time.Time{}
	}
	if st.busy || (st.err != nil && now.Before(st.retryAt)) {
		return
	}
	built := exists && o.Complete && o.BuildGen == d.Spec.BuildGen
	switch {
	case d.Deleting:
		if !exists {
			r.removeLocked(d)
			return
		}
		r.spawnLocked(ctx, d, st, "Deleting", r.deleteFlow)
	case d.Spec.VNetNetns == "" || !vnetReady(r, d.Spec.VNetNetns):
		// Its VNET is not there yet (or failed): wait.
	case !built:
		verb := "Creating"
		if exists {
			verb = "Updating"
		}
		r.spawnLocked(ctx, d, st, verb, r.buildFlow)
	case d.Run() && !o.Started:
		r.spawnLocked(ctx, d, st, "Updating", r.startFlow)
	case d.Run() && (o.RestartGen != d.Spec.RestartGen || o.ModelGen != d.Spec.ModelGen):
		r.spawnLocked(ctx, d, st, "Updating", r.restartFlow)
	case !d.Run() && o.Started:
		r.spawnLocked(ctx, d, st, "Updating", r.stopFlow)
	default:
		st.prov, st.err, st.failures, st.leaving = "Succeeded", nil, 0, !d.Run()
		st.power = powerOf(d, o.Started)
	}
}

// deleteUnwantedVNets removes VNET namespaces nobody wants, once no
// instance uses them, and releases their names in the state.
func (r *Reconciler) deleteUnwantedVNets(ctx context.Context, kvnets []string, wantVNet map[string]bool, desired []*Desired, obs map[string]Observed) {
	for _, n := range kvnets {
		if wantVNet[n] {
			continue
		}
		used := false
		for _, d := range desired {
			if d.Spec.VNetNetns == n {
				if _, ok := obs[d.Spec.Netns]; ok {
					used = true
				}
			}
		}
		key := "delete-vnet:" + n
		if used || !r.retry.due(key, time.Now()) {
			continue
		}
		if err := r.kernel.DeleteVNet(ctx, n); err != nil {
			if ctx.Err() == nil {
				r.retry.failed(key, "delete VNET "+n, err, time.Now(), "netns", n)
			}
			continue
		}
		r.retry.succeeded(key)
		r.mu.Lock()
		delete(r.vnetDone, n)
		r.mu.Unlock()
		if err := r.store.Update(func(st *model.State) error { st.ReleaseVNetNetns(n); return nil }); err != nil {
			r.log.Error("release VNET namespace name in the state", "netns", n, "err", err)
		}
	}
}

// applyDataPlane hands the kernel the data plane of the state: instances
// built serve traffic when started, running and not leaving.
func (r *Reconciler) applyDataPlane(ctx context.Context, snap *model.State, desired []*Desired, obs map[string]Observed) map[string]error {
	serving, exists := map[string]bool{}, map[string]bool{}
	r.mu.Lock()
	for _, d := range desired {
		st := r.inst[d.Spec.Netns]
		o, ok := obs[d.Spec.Netns]
		if !ok || !o.Complete || st == nil {
			continue
		}
		exists[d.Spec.Netns] = !d.Deleting
		serving[d.Spec.Netns] = o.Started && d.Run() && !st.leaving && !st.busy
	}
	r.mu.Unlock()
	var planErr map[string]error
	if err := r.guard("applying the data plane", func() error {
		planErr = r.kernel.ApplyPlan(ctx, buildPlan(snap, desired, serving, exists, r.opt.Plan))
		return nil
	}); err != nil {
		// Every resource of the plan is reported failed; the next pass
		// tries again.
		planErr = map[string]error{}
		for k := range snap.LoadBalancers {
			planErr[k] = err
		}
	}
	return planErr
}

// recordProgress records pending work and failures per resource, for the API.
func (r *Reconciler) recordProgress(snap *model.State, desired []*Desired, kvnets []string, wantVNet map[string]bool, planErr map[string]error) {
	pending, failed := map[string]bool{}, map[string]error{}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range desired {
		st := r.inst[d.Spec.Netns]
		if st == nil || st.busy || !r.settledLocked(d, st) {
			pending[d.SetKey] = true
		}
		if st != nil && st.err != nil && !st.busy {
			if failed[d.SetKey] == nil {
				failed[d.SetKey] = fmt.Errorf("%s: %w", d.Spec.VMName, st.err)
			}
		}
	}
	for k := range unsettledResources(snap) {
		pending[k] = true
	}
	for _, v := range VNetSpecs(snap) {
		if !vnetReady(r, v.Netns) {
			pending[v.Key] = true
		}
		if e := r.vnetErr[v.Key]; e != nil {
			failed[v.Key] = e
			delete(pending, v.Key)
		}
	}
	for _, n := range kvnets {
		if owner, ok := snap.Netns[n]; ok && !wantVNet[n] {
			pending[owner] = true
		}
	}
	r.pending, r.failed, r.planErr = pending, failed, planErr
	r.applied = snap.Seq
}

// unsettledResources are the keys of scale sets with an overprovisioned
// scale-out pending or being deleted, VMs being deleted and resource groups
// being deleted ("group:" + key): work is pending on them.
func unsettledResources(snap *model.State) map[string]bool {
	out := map[string]bool{}
	for k, ss := range snap.ScaleSets {
		if ss.Batch != nil || ss.Deleting {
			out[k] = true
		}
	}
	for k, vm := range snap.VMs {
		if vm.Deleting {
			out[k] = true
		}
	}
	for k, g := range snap.ResourceGroups {
		if g.Properties.ProvisioningState == "Deleting" {
			out["group:"+k] = true
		}
	}
	return out
}

// vnetReady reports whether a VNET namespace was ensured; r.mu must be held.
func vnetReady(r *Reconciler, netns string) bool {
	_, ok := r.vnetDone[netns]
	return ok
}

func (r *Reconciler) statusLocked(netns string) *status {
	st := r.inst[netns]
	if st == nil {
		st = &status{prov: "Creating", power: "starting"}
		r.inst[netns] = st
	}
	return st
}

// settledLocked reports whether an instance is where the state wants it.
func (r *Reconciler) settledLocked(d *Desired, st *status) bool {
	if st.err != nil {
		return true // failed: settled, reported as failure
	}
	if d.Deleting {
		return false
	}
	o := st.obs
	if !o.Complete || o.BuildGen != d.Spec.BuildGen {
		return false
	}
	if d.Run() {
		return o.Started && o.RestartGen == d.Spec.RestartGen && o.ModelGen == d.Spec.ModelGen
	}
	return !o.Started
}

func powerOf(d *Desired, started bool) string {
	switch {
	case started:
		return "running"
	case d.Power == model.PowerDeallocated:
		return "deallocated"
	}
	return "stopped"
}

// flow brings one instance towards d. o is what was observed when the
// flow started: a flow must not read st.obs, which passes rewrite under
// r.mu while it runs.
type flow func(ctx context.Context, d *Desired, st *status, o Observed) error

// spawnLocked starts a flow for an instance in its own goroutine. A flow
// that panics fails like one that returns an error: the instance is marked
// Failed and retried with backoff, and the daemon lives on.
func (r *Reconciler) spawnLocked(ctx context.Context, d *Desired, st *status, verb string, f flow) {
	st.busy = true
	st.prov = verb
	o := st.obs
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		err := r.guard(verb+" "+d.Spec.Netns, func() error { return f(ctx, d, st, o) })
		r.mu.Lock()
		st.busy = false
		r.flowsEnded++
		st.ended = r.flowsEnded
		r.touched[d.Spec.Netns] = true
		key := "instance:" + d.Spec.Netns
		if err != nil && ctx.Err() == nil {
			st.failures++
			st.err = err
			st.prov = "Failed"
			now := time.Now()
			st.retryAt = now.Add(r.retry.failed(key, "instance "+d.Spec.Netns, err, now, "netns", d.Spec.Netns, "step", verb))
		} else if err == nil {
			st.err, st.failures = nil, 0
			r.retry.succeeded(key)
		}
		r.mu.Unlock()
		r.Trigger()
	}()
}

// panicUnlock releases r.mu when a panic leaves a locked section early, so
// that guard's recovery does not leave the reconciler locked for good.
type panicUnlock struct {
	mu   *sync.Mutex
	held bool
}

// unlockOnPanic is called right after r.mu.Lock(); defer its release and
// call done just before the matching Unlock.
func (r *Reconciler) unlockOnPanic() *panicUnlock { return &panicUnlock{mu: &r.mu, held: true} }

func (p *panicUnlock) done() { p.held = false }

func (p *panicUnlock) release() {
	if p.held {
		p.held = false
		p.mu.Unlock()
	}
}

// guard runs f and turns a panic into an error, logging the stack, so that
// a bug hit by one resource fails that resource instead of the daemon.
func (r *Reconciler) guard(what string, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("internal error recovered", "in", what, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("internal error while %s: %v", strings.ToLower(what), p)
		}
	}()
	return f()
}

func (r *Reconciler) acquire(ctx context.Context) error {
	select {
	case r.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Reconciler) release() { <-r.sem }

func (r *Reconciler) setPower(st *status, p string, leaving bool) {
	r.mu.Lock()
	st.power, st.leaving = p, leaving
	r.mu.Unlock()
}

// buildFlow (re)builds an instance and starts it when it should run.
func (r *Reconciler) buildFlow(ctx context.Context, d *Desired, st *status, o Observed) error {
	if o.Started {
		r.setPower(st, "stopping", true)
		if err := r.kernel.Drain(ctx, d.Spec.Netns); err != nil {
			return fmt.Errorf("drain before rebuild: %w", err)
		}
	}
	if err := r.acquire(ctx); err != nil {
		return err
	}
	if o.BuildGen != d.Spec.BuildGen && (o.Complete || o.Started) {
		if err := r.kernel.DeleteInstance(ctx, d.Spec.Netns); err != nil {
			r.release()
			return fmt.Errorf("remove old build: %w", err)
		}
	}
	err := r.kernel.CreateInstance(ctx, d.Spec)
	r.release()
	if err != nil {
		return err
	}
	if !d.Run() {
		r.setPower(st, powerOf(d, false), true)
		return nil
	}
	r.setPower(st, "starting", false)
	if err := r.kernel.StartInstance(ctx, d.Spec, true); err != nil {
		return err
	}
	r.setPower(st, "running", false)
	return nil
}

func (r *Reconciler) startFlow(ctx context.Context, d *Desired, st *status, _ Observed) error {
	r.setPower(st, "starting", false)
	if err := r.kernel.StartInstance(ctx, d.Spec, false); err != nil {
		return err
	}
	r.setPower(st, "running", false)
	return nil
}

func (r *Reconciler) restartFlow(ctx context.Context, d *Desired, st *status, _ Observed) error {
	r.setPower(st, "stopping", true)
	if err := r.kernel.Drain(ctx, d.Spec.Netns); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	if err := r.kernel.StopInstance(ctx, d.Spec.Netns); err != nil {
		return err
	}
	r.setPower(st, "starting", false)
	if err := r.kernel.StartInstance(ctx, d.Spec, true); err != nil {
		return err
	}
	r.setPower(st, "running", false)
	return nil
}

func (r *Reconciler) stopFlow(ctx context.Context, d *Desired, st *status, _ Observed) error {
	r.setPower(st, "stopping", true)
	if err := r.kernel.Drain(ctx, d.Spec.Netns); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	if err := r.kernel.StopInstance(ctx, d.Spec.Netns); err != nil {
		return err
	}
	r.setPower(st, powerOf(d, false), true)
	return nil
}

func (r *Reconciler) deleteFlow(ctx context.Context, d *Desired, st *status, o Observed) error {
	r.setPower(st, "stopping", true)
	if o.Started {
		if err := r.kernel.Drain(ctx, d.Spec.Netns); err != nil {
			return fmt.Errorf("drain: %w", err)
		}
	}
	if err := r.acquire(ctx); err != nil {
		return err
	}
	err := r.kernel.DeleteInstance(ctx, d.Spec.Netns)
	r.release()
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.removeLocked(d)
	r.mu.Unlock()
	return nil
}

// removeLocked queues the removal of a deleted instance's record.
func (r *Reconciler) removeLocked(d *Desired) {
	if d.SetKey == "" {
		return // orphan: nothing in the model
	}
	if d.Spec.Kind == "vm" {
		r.removed = append(r.removed, removal{vmKey: d.SetKey})
	} else {
		r.removed = append(r.removed, removal{setKey: d.SetKey, id: d.Spec.InstanceID})
	}
}

// provisionBatch is an overprovisioning batch of a scale set: which of its
// members run, and whether all have settled.
type provisionBatch struct {
	id      arm.ID
	running map[string]bool
	settled bool
}

// setChange asks the state to upgrade or replace instances of a scale set.
type setChange struct {
	id     arm.ID
	ids    []string
	action string // repairs: RepairReplace, RepairRestart or RepairReimage
}

// feedback writes what the kernel did back into the model: records of
// deleted instances dropped, overprovisioning batches settled, the next
// rolling-upgrade batch, automatic repairs, finished group deletes.
func (r *Reconciler) feedback(snap *model.State) {
	r.mu.Lock()
	unlock := r.unlockOnPanic()
	defer unlock.release()
	removed := r.removed
	r.removed = nil
	batches := r.batchesLocked(snap)
	upgrades, repairs := r.setChangesLocked(snap)
	unlock.done()
	r.mu.Unlock()
	err := r.store.Update(func(st *model.State) error {
		for _, rm := range removed {
			if rm.vmKey != "" {
				st.RemoveVM(rm.vmKey)
			} else {
				st.RemoveInstance(rm.setKey, rm.id)
			}
		}
		for _, b := range batches {
			st.ResolveBatch(b.id, b.running, b.settled)
		}
		for _, u := range upgrades {
			if _, e := st.UpgradeInstances(u.id, u.ids); e != nil {
				r.log.Warn("rolling upgrade batch not started", "scaleSet", u.id.Name(), "err", e)
			}
		}
		for _, u := range repairs {
			var e *arm.Error
			switch u.action {
			case RepairRestart:
				_, e = st.Restart(u.id, u.ids)
			case RepairReimage:
				_, e = st.Reimage(u.id, u.ids)
			default:
				_, e = st.ReplaceInstances(u.id, u.ids)
			}
			if e != nil {
				r.log.Warn("automatic repair not started", "scaleSet", u.id.Name(), "err", e)
			}
		}
		st.FinishGroupDeletes()
		return nil
	})
	if err != nil {
		r.log.Error("update state", "err", err)
		r.mu.Lock()
		r.removed = append(r.removed, removed...)
		r.mu.Unlock()
	}
}

// batchesLocked says, for each scale set with an overprovisioning batch,
// which members run and whether all have settled; r.mu must be held.
func (r *Reconciler) batchesLocked(snap *model.State) []provisionBatch {
	var batches []provisionBatch
	for _, ss := range snap.ScaleSets {
		if ss.Batch == nil {
			continue
		}
		b := provisionBatch{running: map[string]bool{}, settled: true}
		b.id, _ = arm.ParseID(ss.Model.ID) // ids in the state were parsed when stored
		for _, id := range ss.Batch.Members {
			in, ok := ss.Instances[id]
			if !ok {
				continue
			}
			st := r.inst[in.Netns]
			switch {
			case st == nil || st.busy:
				b.settled = false
			case st.err != nil:
			case st.obs.Complete && st.obs.Started:
				b.running[id] = true
			default:
				b.settled = false
			}
		}
		batches = append(batches, b)
	}
	return batches
}

// setChangesLocked picks rolling upgrades (the next batch once the previous
// one runs the new model and its health is known) and automatic repairs
// (instances unhealthy past the grace period); r.mu must be held.
func (r *Reconciler) setChangesLocked(snap *model.State) (upgrades, repairs []setChange) {
	now := time.Now()
	for key, ss := range snap.ScaleSets {
		if ru := r.rollingLocked(key, ss, now); ru != nil && ru.Status == RollingForward {
			view := func(in *model.Instance) rollingInstance {
				st := r.inst[in.Netns]
				if st == nil {
					return rollingInstance{Health: "Unknown"}
				}
				return rollingInstance{
					Applied: !st.busy && st.err == nil && st.obs.ModelGen == in.ModelGen && st.obs.Started,
					Health:  st.health,
				}
			}
			ids, fault := nextRollingBatch(ss, view, r.rolled[key], now)
			switch {
			case fault != nil:
				ru.Status, ru.Error, ru.End = RollingFaulted, fault, now
				r.log.Warn("rolling upgrade stopped", "scaleSet", ss.Model.Name, "code", fault.Code, "err", fault.Message)
			case len(ids) > 0:
				id, _ := arm.ParseID(ss.Model.ID) // ids in the state were parsed when stored
				upgrades = append(upgrades, setChange{id: id, ids: ids})
				r.rolled[key] = now
				r.log.Info("rolling upgrade batch", "scaleSet", ss.Model.Name, "instances", ids)
			}
		}
		since := func(in *model.Instance) time.Time {
			if st := r.inst[in.Netns]; st != nil && !st.busy {
				return st.unhealthy
			}
			return time.Time{}
		}
		if ids := repairsDue(ss, since, now); len(ids) > 0 {
			id, _ := arm.ParseID(ss.Model.ID) // ids in the state were parsed when stored
			action := repairPolicy(ss).Action
			repairs = append(repairs, setChange{id: id, ids: ids, action: action})
			for _, in := range ids {
				if st := r.inst[ss.Instances[in].Netns]; st != nil {
					st.unhealthy = time.Time{} // its grace counts again once the repair is done
				}
			}
			r.log.Warn("automatic repair of unhealthy instances", "scaleSet", ss.Model.Name, "action", action, "instances", ids)
		}
	}
	for key := range r.rolling {
		if _, ok := snap.ScaleSets[key]; !ok {
			delete(r.rolling, key)
		}
	}
	return upgrades, repairs
}

// Rolling upgrade states (runningStatus.code of Azure's rolling upgrade status).
const (
	RollingForward   = "RollingForward"
	RollingCompleted = "Completed"
	RollingFaulted   = "Faulted"
)

// RollingUpgrade is the latest rolling upgrade of a scale set.
type RollingUpgrade struct {
	ModelGen   int64
	Status     string // RollingForward, Completed, Faulted
	Start, End time.Time
	Error      *arm.Error // why it stopped (Faulted)
	// Progress, counted when asked.
	Successful, Failed, InProgress, Pending int
}

// rollingLocked updates and returns the latest rolling upgrade of a Rolling
// scale set: a new one starts when its model generation changes and some
// instance runs an older one; r.mu must be held.
func (r *Reconciler) rollingLocked(key string, ss *model.ScaleSet, now time.Time) *RollingUpgrade {
	p := ss.Model.Properties
	if ss.Deleting || p == nil || p.UpgradePolicy == nil || p.UpgradePolicy.Mode != "Rolling" {
		return nil
	}
	ru := r.rolling[key]
	outdated := 0
	for _, in := range ss.Live() {
		if in.ModelGen != ss.ModelGen {
			outdated++
		}
	}
	if ru == nil || ru.ModelGen != ss.ModelGen {
		if outdated == 0 {
			return ru
		}
		ru = &RollingUpgrade{ModelGen: ss.ModelGen, Status: RollingForward, Start: now}
		r.rolling[key] = ru
	}
	if ru.Status == RollingForward && outdated == 0 {
		done := true
		for _, in := range ss.Live() {
			if st := r.inst[in.Netns]; st == nil || st.busy || st.obs.ModelGen != in.ModelGen {
				done = false
			}
		}
		if done {
			ru.Status, ru.End = RollingCompleted, now
		}
	}
	return ru
}

// Rolling reports the latest rolling upgrade of a scale set (by lower-cased
// id), with its progress, and false when it never had one.
func (r *Reconciler) Rolling(setKey string, ss *model.ScaleSet) (RollingUpgrade, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ru := r.rolling[setKey]
	if ru == nil {
		return RollingUpgrade{}, false
	}
	out := *ru
	if ss != nil {
		for _, in := range ss.Live() {
			st := r.inst[in.Netns]
			switch {
			case in.ModelGen != ru.ModelGen:
				out.Pending++
			case st == nil || st.busy || st.obs.ModelGen != in.ModelGen:
				out.InProgress++
			case st.err != nil || st.health == "Unhealthy":
				out.Failed++
			default:
				out.Successful++
			}
		}
	}
	return out, true
}

// ---- status ----

// InstanceStatus is the reconciler's view of one instance.
type InstanceStatus struct {
	ProvisioningState string              // Creating, Updating, Succeeded, Failed, Deleting
	PowerState        string              // starting, running, stopping, stopped, deallocated, unknown
	Health            string              // Healthy, Unhealthy, Unknown, or "" when nothing reports health
	HealthFromProbe   bool                // Health comes from the scale set's load-balancer probe
	Error             string              // last failure, "" when none
	Extensions        []arm.ExtensionView // extension statuses
}

// Instance reports the observed status of an instance.
func (r *Reconciler) Instance(netns string) InstanceStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.inst[netns]
	if st == nil {
		return InstanceStatus{ProvisioningState: "Creating", PowerState: "starting"}
	}
	out := InstanceStatus{ProvisioningState: st.prov, PowerState: st.power, Health: st.health, HealthFromProbe: st.probeHealth, Extensions: st.obs.Extensions}
	if st.err != nil {
		out.ProvisioningState, out.Error = "Failed", st.err.Error()
	}
	return out
}

// Observed returns what the last pass saw of an instance.
func (r *Reconciler) Observed(netns string) (Observed, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.inst[netns]
	if st == nil {
		return Observed{}, false
	}
	return st.obs, true
}

// Pending reports work left for a resource and its failure.
func (r *Reconciler) Pending(key string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.planErr[key]; err != nil {
		return false, err
	}
	return r.pending[key], r.failed[key]
}

// Applied is the state sequence number of the last pass.
func (r *Reconciler) Applied() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied
}

func fingerprint(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
