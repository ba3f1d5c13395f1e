package reconcile

import (
	"context"
	"errors"
	"sort"
	"sync"
)

// fakeKernel keeps instances and VNETs in memory and records calls.
type fakeKernel struct {
	mu      sync.Mutex
	vnets   map[string]VNetSpec
	inst    map[string]*Observed
	specs   map[string]InstanceSpec
	calls   []string
	fail    map[string]error         // "create:<netns>" -> error
	panics  map[string]any           // "start:<netns>" or "plan" -> panic value
	block   map[string]chan struct{} // "drain:<netns>" -> the call waits for it to close
	plan    *Plan
	drained []string
	lists   int // calls of Instances
	looked  int // instances looked at by LookInstances
}

func newFake() *fakeKernel {
	return &fakeKernel{vnets: map[string]VNetSpec{}, inst: map[string]*Observed{}, specs: map[string]InstanceSpec{}, fail: map[string]error{}, panics: map[string]any{}, block: map[string]chan struct{}{}}
}

func (k *fakeKernel) call(s string) error {
	k.mu.Lock()
	k.calls = append(k.calls, s)
	p, panics := k.panics[s]
	err := k.fail[s]
	wait := k.block[s]
	k.mu.Unlock()
	if wait != nil {
		<-wait
	}
	if panics {
		panic(p)
	}
	return err
}

func (k *fakeKernel) EnsureVNet(_ context.Context, v VNetSpec) error {
	if err := k.call("vnet:" + v.Netns); err != nil {
		return err
	}
	k.mu.Lock()
	k.vnets[v.Netns] = v
	k.mu.Unlock()
	return nil
}

func (k *fakeKernel) DeleteVNet(_ context.Context, n string) error {
	if err := k.call("delvnet:" + n); err != nil {
		return err
	}
	k.mu.Lock()
	delete(k.vnets, n)
	k.mu.Unlock()
	return nil
}

func (k *fakeKernel) VNets(context.Context) ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for n := range k.vnets {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

func (k *fakeKernel) CreateInstance(_ context.Context, in InstanceSpec) error {
	if err := k.call("create:" + in.Netns); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.vnets[in.VNetNetns]; !ok {
		return errors.New("no vnet " + in.VNetNetns)
	}
	o := k.inst[in.Netns]
	if o == nil || o.BuildGen != in.BuildGen || !o.Complete {
		o = &Observed{}
	}
	o.Complete, o.BuildGen = true, in.BuildGen
	k.inst[in.Netns] = o
	k.specs[in.Netns] = in
	return nil
}

func (k *fakeKernel) StartInstance(_ context.Context, in InstanceSpec, rerun bool) error {
	if err := k.call("start:" + in.Netns); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	o := k.inst[in.Netns]
	if o == nil {
		return errors.New("start of a missing instance")
	}
	o.Started, o.RestartGen, o.ModelGen = true, in.RestartGen, in.ModelGen
	k.specs[in.Netns] = in
	return nil
}

func (k *fakeKernel) StopInstance(_ context.Context, n string) error {
	k.call("stop:" + n)
	k.mu.Lock()
	defer k.mu.Unlock()
	if o := k.inst[n]; o != nil {
		o.Started = false
	}
	return nil
}

func (k *fakeKernel) DeleteInstance(_ context.Context, n string) error {
	k.call("delete:" + n)
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.inst, n)
	return nil
}

func (k *fakeKernel) Instances(ctx context.Context) (map[string]Observed, error) {
	if err := ctx.Err(); err != nil {
		return nil, err // as the kernel's, which reads namespaces under ctx
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.fail["instances"]; err != nil {
		return nil, err
	}
	k.lists++
	out := map[string]Observed{}
	for n, o := range k.inst {
		out[n] = *o
	}
	return out, nil
}

// LookInstances implements InstanceLooker; looked counts the instances
// looked at.
func (k *fakeKernel) LookInstances(ctx context.Context, names []string) (map[string]Observed, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.fail["instances"]; err != nil {
		return nil, err
	}
	out := map[string]Observed{}
	for _, n := range names {
		k.looked++
		if o, ok := k.inst[n]; ok {
			out[n] = *o
		}
	}
	return out, nil
}

func (k *fakeKernel) Drain(_ context.Context, n string) error {
	k.call("drain:" + n)
	k.mu.Lock()
	k.drained = append(k.drained, n)
	k.mu.Unlock()
	return nil
}

func (k *fakeKernel) ApplyPlan(_ context.Context, p *Plan) map[string]error {
	k.call("plan")
	k.mu.Lock()
	k.plan = p
	k.mu.Unlock()
	return nil
}

func (k *fakeKernel) count(prefix string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, c := range k.calls {
		if len(c) >= len(prefix) && c[:len(prefix)] == prefix {
			n++
		}
	}
	return n
}
