package metrics

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"
)

// Sample is one measurement of one instance: rates over the interval since
// the previous sample, and memory at Time.
type Sample struct {
	Time         time.Time
	CPU          float64 // percent of the instance's vCPUs over the interval
	NetIn        float64 // bytes received in the interval
	NetOut       float64 // bytes sent in the interval
	MemAvailable float64 // bytes
	MemTotal     float64 // bytes; 0 when unknown
	DiskRead     float64 // bytes read in the interval
	DiskWrite    float64 // bytes written in the interval
	DiskReadOps  float64 // reads per second over the interval
	DiskWriteOps float64 // writes per second over the interval
	hasCPU       bool
	hasNet       bool
	hasDisk      bool
	span         time.Duration // since the previous sample
}

// interval is the seconds the sample's rates are over (0 for the first).
func (s Sample) interval() float64 { return s.span.Seconds() }

// DefaultCapacity is the number of samples kept per instance when
// Store.Capacity is zero.
const DefaultCapacity = 720

// Store keeps the recent samples of every instance, per resource. It is safe
// for concurrent use. The zero value is ready.
type Store struct {
	// Capacity is the number of samples kept per instance (a ring buffer);
	// zero means DefaultCapacity.
	Capacity int

	mu   sync.Mutex
	sets map[string]map[string]*series // lower-case resource id → instance → samples
}

type series struct {
	resourceID string
	ring       []Sample
	next       int
	full       bool
	prev       Counters
	prevT      time.Time
	vcpus      int
	last       time.Time
}

func key(resourceID string) string { return strings.ToLower(strings.TrimRight(resourceID, "/")) }

// Add records counters read at now. The first counters of an instance only
// set its baseline for CPU and network; memory is recorded at once.
func (s *Store) Add(t Target, c Counters, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sets == nil {
		s.sets = map[string]map[string]*series{}
	}
	set := s.sets[key(t.ResourceID)]
	if set == nil {
		set = map[string]*series{}
		s.sets[key(t.ResourceID)] = set
	}
	sr := set[t.Instance]
	if sr == nil {
		n := s.Capacity
		if n <= 0 {
			n = DefaultCapacity
		}
		sr = &series{resourceID: t.ResourceID, ring: make([]Sample, n)}
		set[t.Instance] = sr
	}
	sr.vcpus = VCPUs(t.VMSize)
	smp := Sample{Time: now, MemAvailable: float64(c.MemAvailable), MemTotal: float64(c.MemTotal)}
	if !sr.prevT.IsZero() {
		dt := now.Sub(sr.prevT)
		smp.span = dt
		if dt > 0 && c.HasCPU && sr.prev.HasCPU && c.CPU >= sr.prev.CPU {
			smp.CPU = min(100, 100*float64(c.CPU-sr.prev.CPU)/float64(dt)/float64(sr.vcpus))
			smp.hasCPU = true
		}
		if c.HasNet && sr.prev.HasNet && c.RxBytes >= sr.prev.RxBytes && c.TxBytes >= sr.prev.TxBytes {
			smp.NetIn, smp.NetOut = float64(c.RxBytes-sr.prev.RxBytes), float64(c.TxBytes-sr.prev.TxBytes)
			smp.hasNet = true
		}
		p := sr.prev
		if dt > 0 && c.HasDisk && p.HasDisk && c.ReadBytes >= p.ReadBytes && c.WriteBytes >= p.WriteBytes && c.ReadOps >= p.ReadOps && c.WriteOps >= p.WriteOps {
			smp.DiskRead, smp.DiskWrite = float64(c.ReadBytes-p.ReadBytes), float64(c.WriteBytes-p.WriteBytes)
			smp.DiskReadOps = float64(c.ReadOps-p.ReadOps) / dt.Seconds()
			smp.DiskWriteOps = float64(c.WriteOps-p.WriteOps) / dt.Seconds()
			smp.hasDisk = true
		}
	}
	sr.prev, sr.prevT, sr.last = c, now, now
	sr.ring[sr.next] = smp
	sr.next = (sr.next + 1) % len(sr.ring)
	if sr.next == 0 {
		sr.full = true
	}
}

// Forget drops instances of resourceID not in keep whose last sample is
// before cutoff (instances deleted long enough ago that no window needs
// them), and resources with no instance left.
func (s *Store) Forget(keep map[string]map[string]bool, cutoff time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for rid, set := range s.sets {
		for inst, sr := range set {
			if !keep[rid][inst] && sr.last.Before(cutoff) {
				delete(set, inst)
			}
		}
		if len(set) == 0 {
			delete(s.sets, rid)
		}
	}
}

// Instances answers the instance ids with samples for resourceID, sorted.
func (s *Store) Instances(resourceID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id := range s.sets[key(resourceID)] {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Point is a metric's aggregate over one time grain starting at Time. Count
// is the number of samples in it; a grain without samples has Count 0 and no
// meaningful Value.
type Point struct {
	Time  time.Time
	Value float64
	Count int
}

// Aggregations Azure Monitor answers.
var Aggregations = []string{"Average", "Minimum", "Maximum", "Total", "Count"}

// Series answers metric over [start, end) for every instance of resourceID
// (or only the listed instances), one point per grain, grains aligned to
// multiples of grain since the Unix epoch. Each point aggregates every sample
// of every instance whose time falls in the grain with agg (Average, Minimum,
// Maximum, Total, Count).
func (s *Store) Series(resourceID, metric string, grain time.Duration, agg string, start, end time.Time, instances ...string) ([]Point, error) {
	def, err := Lookup(metric)
	if err != nil {
		return nil, err
	}
	if grain <= 0 {
		return nil, errors.New("metrics: the time grain must be positive")
	}
	canon, ok := canonicalAggregation(agg)
	if !ok {
		return nil, errors.New("metrics: aggregation " + agg + " is not one of " + strings.Join(Aggregations, ", "))
	}
	first := start.Truncate(grain)
	n := int((end.Sub(first) + grain - 1) / grain)
	if n <= 0 {
		return nil, nil
	}
	acc := make([]accum, n)
	s.mu.Lock()
	set := s.sets[key(resourceID)]
	of := set
	if len(instances) > 0 { // only those: a lookup each, not a walk of the set (a split by VM asks every instance in turn)
		of = make(map[string]*series, len(instances))
		for _, id := range instances {
			if sr, ok := set[id]; ok {
				of[id] = sr
			}
		}
	}
	for _, sr := range of {
		sr.since(start, func(smp Sample) {
			if !smp.Time.Before(end) {
				return
			}
			v, ok := def.value(smp)
			if !ok {
				return
			}
			acc[int(smp.Time.Sub(first)/grain)].add(v)
		})
	}
	s.mu.Unlock()
	pts := make([]Point, n)
	for i, a := range acc {
		pts[i] = Point{Time: first.Add(time.Duration(i) * grain), Count: a.n, Value: a.value(canon)}
	}
	return pts, nil
}

// since calls f for the samples at or after start, newest first: samples
// are added in time order, so the walk stops at the first older one.
func (sr *series) since(start time.Time, f func(Sample)) {
	n := sr.next
	if sr.full {
		n = len(sr.ring)
	}
	for k := 1; k <= n; k++ {
		smp := sr.ring[(sr.next-k+len(sr.ring))%len(sr.ring)]
		if smp.Time.Before(start) {
			return
		}
		f(smp)
	}
}

type accum struct {
	n             int
	sum, min, max float64
}

func (a *accum) add(v float64) {
	if a.n == 0 || v < a.min {
		a.min = v
	}
	if a.n == 0 || v > a.max {
		a.max = v
	}
	a.n++
	a.sum += v
}

func (a accum) value(agg string) float64 {
	switch agg {
	case "Count":
		return float64(a.n)
	case "Total":
		return a.sum
	}
	if a.n == 0 {
		return 0
	}
	switch agg {
	case "Minimum":
		return a.min
	case "Maximum":
		return a.max
	}
	return a.sum / float64(a.n)
}

// canonicalAggregation accepts Azure Monitor's aggregation names and
// autoscale's statistics (Min, Max, Sum), any case.
func canonicalAggregation(a string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(a)) {
	case "average", "avg", "":
		return "Average", true
	case "minimum", "min":
		return "Minimum", true
	case "maximum", "max":
		return "Maximum", true
	case "total", "sum":
		return "Total", true
	case "count":
		return "Count", true
	}
	return a, false
}

// Collector reads targets from the kernel into a Store.
type Collector struct {
	Reader Reader
	Store  *Store
}

// Collect measures every target at now. A target that cannot be read is
// skipped and its error joined into the result; the others are recorded.
func (c *Collector) Collect(ctx context.Context, targets []Target, now time.Time) error {
	var errs []error
	for _, t := range targets {
		if err := ctx.Err(); err != nil {
			return err
		}
		cs, err := c.Reader.Read(t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.Store.Add(t, cs, now)
	}
	return errors.Join(errs...)
}

// Latest calls f for every instance with its resource id (as first added),
// its latest sample and its latest counters.
func (s *Store) Latest(f func(resourceID, instance string, last Sample, c Counters)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, set := range s.sets {
		for id, sr := range set {
			n := sr.next - 1
			if n < 0 {
				if !sr.full {
					continue
				}
				n = len(sr.ring) - 1
			}
			f(sr.resourceID, id, sr.ring[n], sr.prev)
		}
	}
}
