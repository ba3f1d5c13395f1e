package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/autoscale"
	"github.com/vmss-emulator/vmss/metrics"
	"github.com/vmss-emulator/vmss/model"
)

// Instance is one scale-set instance to measure.
type Instance struct {
	ResourceID string // the scale set's id
	ID         string // instance id
	Name       string // kernel name (its network namespace)
	VMSize     string
	VNetNetns  string // the namespace holding its VNET's bridge and veths
}

// Sampler reads the counters of instances from the kernel, in one round.
type Sampler interface {
	// Sample answers counters by Instance.Name; instances it cannot read
	// are missing from the map and their errors joined.
	Sample(ctx context.Context, ins []Instance) (map[string]metrics.Counters, error)
}

// PartialSampler is a Sampler that keeps something per instance (e.g.
// KernelSampler): a round that reads some instances only (Options.PerRound)
// tells it every instance that exists, all, so that it forgets only those
// that are gone.
type PartialSampler interface {
	SampleSome(ctx context.Context, ins, all []Instance) (map[string]metrics.Counters, error)
}

// DefaultPerRound is the most instances sampled in one round when
// Options.PerRound is zero.
const DefaultPerRound = 1000

// Options configure a Monitor. Store and Sampler are required.
type Options struct {
	Store   *model.Store
	Sampler Sampler
	// TimeScale multiplies every autoscale duration and the default
	// intervals; zero or negative means 1.
	TimeScale      float64
	SampleInterval time.Duration // zero: 15 s × TimeScale, at least 100 ms
	EvalInterval   time.Duration // zero: 60 s × TimeScale, at least 200 ms
	// PerRound is the most instances sampled in one round; zero means
	// DefaultPerRound. With more instances, each round samples the next
	// PerRound of them (in name order, wrapping around), so that a round
	// costs the same whatever the number of instances, and each instance
	// is sampled every ceil(instances / PerRound) rounds (InstanceInterval).
	PerRound int
	// History is the number of activity log events kept per setting; zero
	// means 2000.
	History int
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Registerer, when not nil, gets the instances' latest measurements and
	// the autoscale counters as Prometheus metrics.
	Registerer prometheus.Registerer
	// StateFile, when not empty, keeps each setting's last scale action
	// (cooldowns) and the activity log across restarts: read by New,
	// written after each scale action and when Run ends.
	StateFile string
}

// Monitor samples metrics and runs autoscale. Create it with New.
type Monitor struct {
	o        Options
	store    *metrics.Store
	engine   autoscale.Engine
	log      *activityLog
	mu       sync.Mutex
	last     map[string]time.Time // setting key → last scale action
	invalid  map[string]string    // setting key → the parse error last logged
	outcomes map[string]float64   // evaluations by outcome, for Prometheus
	saveMu   sync.Mutex           // one writer of the state file at a time
	after    string               // name of the last instance sampled (SampleOnce's rotation)
	period   atomic.Int64         // rounds between two samples of one instance
}

// New returns a Monitor; Run starts it.
func New(o Options) *Monitor {
	if o.TimeScale <= 0 {
		o.TimeScale = 1
	}
	if o.SampleInterval <= 0 {
		o.SampleInterval = max(100*time.Millisecond, time.Duration(float64(15*time.Second)*o.TimeScale))
	}
	if o.EvalInterval <= 0 {
		o.EvalInterval = max(200*time.Millisecond, time.Duration(float64(time.Minute)*o.TimeScale))
	}
	if o.History <= 0 {
		o.History = 2000
	}
	if o.PerRound <= 0 {
		o.PerRound = DefaultPerRound
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Monitor{o: o, store: &metrics.Store{}, engine: autoscale.Engine{TimeScale: o.TimeScale},
		log: &activityLog{max: o.History}, last: map[string]time.Time{}, invalid: map[string]string{}, outcomes: map[string]float64{}}
	m.period.Store(1)
	m.load()
	if o.Registerer != nil {
		o.Registerer.MustRegister(collector{m})
	}
	return m
}

// Retention is how long samples are kept.
func (m *Monitor) Retention() time.Duration {
	return time.Duration(metrics.DefaultCapacity) * m.o.SampleInterval
}

// Run samples and evaluates until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); m.loop(ctx, m.o.SampleInterval, m.SampleOnce) }()
	go func() { defer wg.Done(); m.loop(ctx, m.o.EvalInterval, m.EvaluateOnce) }()
	wg.Wait()
	if err := m.save(true); err != nil {
		m.o.Logger.Warn("monitor", "err", err)
	}
}

// loop runs f every interval, and never more than a quarter of the time: a
// round that took d is followed by a pause of at least 3 d (sampling
// thousands of instances at a compressed pace would otherwise take a core).
func (m *Monitor) loop(ctx context.Context, every time.Duration, f func(context.Context) error) {
	var lastErr string
	for {
		start := time.Now()
		if err := f(ctx); err != nil && ctx.Err() == nil && err.Error() != lastErr {
			m.o.Logger.Warn("monitor", "err", err)
			lastErr = err.Error()
		}
		took := time.Since(start)
		wait := max(every-took, 3*took)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// instances lists every live scale-set instance from the model.
func (m *Monitor) instances() []Instance {
	var out []Instance
	m.o.Store.View(func(st *model.State) {
		vnetNS := map[string]string{}
		for _, ss := range st.ScaleSets {
			if ss.Deleting {
				continue
			}
			size := ""
			if ss.Model.Sku != nil {
				size = ss.Model.Sku.Name
			}
			for _, in := range ss.Live() {
				vk := vnetKey(in.Subnet)
				ns, ok := vnetNS[vk]
				if !ok {
					ns = st.VNetNetns(vk)
					vnetNS[vk] = ns
				}
				out = append(out, Instance{ResourceID: ss.Model.ID, ID: in.ID, Name: in.Netns, VMSize: size, VNetNetns: ns})
			}
		}
	})
	return out
}

// vnetKey is the lower-case VNET id of a subnet id.
func vnetKey(subnetID string) string {
	k := strings.ToLower(subnetID)
	if i := strings.Index(k, "/subnets/"); i >= 0 {
		return k[:i]
	}
	return k
}

// SampleOnce measures the instances of one round: every instance, or with
// more than Options.PerRound the next PerRound of them.
func (m *Monitor) SampleOnce(ctx context.Context) error {
	ins := m.instances()
	now := m.o.Now()
	read := m.round(ins)
	var counters map[string]metrics.Counters
	var err error
	if ps, ok := m.o.Sampler.(PartialSampler); ok {
		counters, err = ps.SampleSome(ctx, read, ins)
	} else {
		counters, err = m.o.Sampler.Sample(ctx, read)
	}
	keep := map[string]map[string]bool{}
	for _, in := range ins {
		rk := strings.ToLower(in.ResourceID)
		if keep[rk] == nil {
			keep[rk] = map[string]bool{}
		}
		keep[rk][in.ID] = true
	}
	for _, in := range read {
		if c, ok := counters[in.Name]; ok {
			m.store.Add(metrics.Target{ResourceID: in.ResourceID, Instance: in.ID, VMSize: in.VMSize}, c, now)
		}
	}
	// a deleted instance's samples stay as long as a window may need them
	m.store.Forget(keep, now.Add(-m.Retention()))
	return err
}

// round picks the instances a round reads: all of them, or the PerRound
// that follow (by name) the last one read, wrapping around. Instances come
// and go between rounds; the order by name keeps every instance's turn.
func (m *Monitor) round(ins []Instance) []Instance {
	n, per := len(ins), m.o.PerRound
	m.period.Store(int64(max(1, (n+per-1)/per)))
	if n <= per {
		return ins
	}
	sorted := slices.SortedFunc(slices.Values(ins), func(a, b Instance) int { return strings.Compare(a.Name, b.Name) })
	start, _ := slices.BinarySearchFunc(sorted, m.after, func(in Instance, name string) int {
		if c := strings.Compare(in.Name, name); c != 0 {
			return c
		}
		return -1 // an instance named m.after comes before: start after it
	})
	out := make([]Instance, 0, per)
	for i := range per {
		out = append(out, sorted[(start+i)%n])
	}
	m.after = out[len(out)-1].Name
	return out
}

// InstanceInterval is how often each instance is sampled: SampleInterval
// times the rounds it takes to sample every instance once (see
// Options.PerRound).
func (m *Monitor) InstanceInterval() time.Duration {
	return time.Duration(m.period.Load()) * m.o.SampleInterval
}

// source adapts the metrics store to the autoscale engine.
type source struct{ s *metrics.Store }

func (s source) Series(_ context.Context, q autoscale.Query) ([]autoscale.Point, error) {
	instances, err := s.instances(q)
	if err != nil {
		return nil, err
	}
	if instances != nil && len(instances) == 0 {
		return nil, nil // the dimensions exclude every instance
	}
	pts, err := s.s.Series(q.ResourceURI, q.Name, q.Grain, q.Statistic, q.Start, q.End, instances...)
	if err != nil {
		return nil, err
	}
	var out []autoscale.Point
	for _, p := range pts {
		if p.Count > 0 {
			out = append(out, autoscale.Point{Time: p.Time, Value: p.Value})
		}
	}
	return out, nil
}

// instances applies a rule's dimensions (VMName Equals / NotEquals) to the
// target's instances; nil means every instance.
func (s source) instances(q autoscale.Query) ([]string, error) {
	if len(q.Dimensions) == 0 {
		return nil, nil
	}
	all := s.s.Instances(q.ResourceURI)
	keep := map[string]bool{}
	for _, id := range all {
		keep[id] = true
	}
	for _, d := range q.Dimensions {
		if !strings.EqualFold(d.Name, "VMName") {
			return nil, fmt.Errorf("dimension %q is not measured; scale-set metrics have the dimension VMName", d.Name)
		}
		named := map[string]bool{}
		star := false
		for _, v := range d.Values {
			star = star || v == "*"
			named[metrics.InstanceOf(v)] = true
		}
		for _, id := range all {
			in := star || named[id]
			if strings.EqualFold(d.Operator, "NotEquals") {
				in = !in
			}
			if !in {
				delete(keep, id)
			}
		}
	}
	out := []string{}
	for _, id := range all {
		if keep[id] {
			out = append(out, id)
		}
	}
	return out, nil
}

// setting is an autoscale setting read from the model.
type setting struct {
	id    arm.ID
	key   string
	body  []byte
	group string
}

// EvaluateOnce evaluates every autoscale setting once and acts on the
// decisions.
func (m *Monitor) EvaluateOnce(ctx context.Context) error {
	var settings []setting
	m.o.Store.View(func(st *model.State) {
		for k, g := range st.Generic {
			if !strings.EqualFold(g.Type, arm.TypeAutoscale) {
				continue
			}
			id, err := arm.ParseID(g.ID)
			if err != nil {
				continue
			}
			body, _ := json.Marshal(g)
			settings = append(settings, setting{id: id, key: k, body: body, group: id.ResourceGroup})
		}
	})
	var errs []error
	for _, s := range settings {
		if err := m.evaluate(ctx, s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Monitor) evaluate(ctx context.Context, s setting) error {
	as, err := autoscale.Parse(s.body)
	m.mu.Lock()
	if err != nil {
		first := m.invalid[s.key] != err.Error()
		m.invalid[s.key] = err.Error()
		m.mu.Unlock()
		if first {
			return fmt.Errorf("autoscale setting %s is not evaluated: %w", s.id, err)
		}
		return nil
	}
	delete(m.invalid, s.key)
	last := m.last[s.key]
	m.mu.Unlock()
	if !as.Enabled {
		return nil
	}
	target, err := arm.ParseID(as.TargetResourceURI)
	if err != nil || !target.IsType(arm.TypeScaleSet) {
		return fmt.Errorf("autoscale setting %s: targetResourceUri %q is not a scale set id", s.id, as.TargetResourceURI)
	}
	capacity, found := -1, false
	m.o.Store.View(func(st *model.State) {
		if ss, ok := st.ScaleSets[target.Key()]; ok && !ss.Deleting {
			capacity, found = ss.Capacity(), true
		}
	})
	if !found {
		return nil // the scale set is not (or no longer) there
	}
	now := m.o.Now()
	d, err := m.engine.Evaluate(ctx, as, autoscale.State{Capacity: capacity, LastAction: last}, now, source{m.store})
	if err != nil {
		return err
	}
	status, msg := "Succeeded", ""
	if d.Changed() {
		err := m.o.Store.Update(func(st *model.State) error {
			if _, e := st.Scale(target, int64(d.New)); e != nil {
				return e
			}
			return nil
		})
		if err != nil {
			status, msg = "Failed", err.Error()
		} else {
			m.mu.Lock()
			m.last[s.key] = now
			m.mu.Unlock()
			m.o.Logger.Info("autoscale", "setting", s.id.Name(), "target", target.Name(), "from", d.Current, "to", d.New, "reason", d.Reason)
		}
	}
	ev := event(s.id.String(), s.group, s.id.Subscription, d, status, msg)
	if d.Changed() && msg == "" {
		if n := m.notify(ctx, s, as, d); n != "" {
			ev.Properties["Notifications"] = n
		}
	}
	m.log.add(s.key, ev)
	if d.Changed() {
		if err := m.save(false); err != nil {
			m.o.Logger.Warn("monitor", "err", err)
		}
	}
	outcome := d.Action
	if msg != "" {
		outcome = "Failed"
	}
	m.mu.Lock()
	m.outcomes[outcome]++
	m.mu.Unlock()
	if msg != "" {
		return fmt.Errorf("autoscale setting %s: scale %s to %d: %s", s.id.Name(), target.Name(), d.New, msg)
	}
	return nil
}

// Metrics answers GET {resourceID}/providers/Microsoft.Insights/metrics.
func (m *Monitor) Metrics(resourceID, region string, q url.Values) (metrics.Response, error) {
	r, err := metrics.ParseRequest(resourceID, q, m.o.Now())
	if err != nil {
		return metrics.Response{}, err
	}
	return m.store.Response(r, region)
}

// Definitions answers GET {resourceID}/providers/Microsoft.Insights/metricDefinitions.
func (m *Monitor) Definitions(resourceID string) metrics.DefinitionsResponse {
	return metrics.DefinitionsFor(resourceID, m.Retention())
}

// Activity lists activity log events, newest first.
func (m *Monitor) Activity(f Filter) []Event { return m.log.list(f) }

// Store is the metric samples (for tests and benchmarks).
func (m *Monitor) Store() *metrics.Store { return m.store }

// SampleInterval is how often instances are sampled.
func (m *Monitor) SampleInterval() time.Duration { return m.o.SampleInterval }
