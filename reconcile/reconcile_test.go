package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

const sub0 = "00000000-0000-0000-0000-000000000000"

type env struct {
	t     *testing.T
	store *model.Store
	k     *fakeKernel
	r     *Reconciler
	set   arm.ID
}

func setup(t *testing.T) *env {
	t.Helper()
	return setupWith(t, Options{Backoff: time.Hour})
}

func setupWith(t *testing.T, opt Options) *env {
	t.Helper()
	st, err := model.Open(t.TempDir(), model.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	k := newFake()
	e := &env{t: t, store: st, k: k, r: New(st, k, opt), set: arm.MustID(sub0, "rg", arm.TypeScaleSet, "web")}
	e.update(func(s *model.State) *arm.Error {
		_, _, ae := s.PutVNet(arm.MustID(sub0, "rg", arm.TypeVirtualNetwork, "vnet"),
			[]byte(`{"properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]},"subnets":[{"name":"sn","properties":{"addressPrefix":"10.0.0.0/24"}}]}}`))
		return ae
	})
	return e
}

func (e *env) update(f func(s *model.State) *arm.Error) {
	e.t.Helper()
	if err := e.store.Update(func(s *model.State) error {
		if ae := f(s); ae != nil {
			return ae
		}
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) putSet(capacity int, overprovision bool) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{
		"sku": map[string]any{"name": "Standard_A1", "capacity": capacity},
		"properties": map[string]any{"overprovision": overprovision, "virtualMachineProfile": map[string]any{
			"osProfile": map[string]any{"computerNamePrefix": "web", "adminUsername": "azureuser", "adminPassword": "Passw0rd!x"},
			"networkProfile": map[string]any{"networkInterfaceConfigurations": []any{map[string]any{"name": "nic", "properties": map[string]any{
				"ipConfigurations": []any{map[string]any{"name": "ip", "properties": map[string]any{
					"subnet": map[string]any{"id": arm.MustID(sub0, "rg", arm.TypeSubnet, "vnet", "sn").String()}}}}}}}},
		}},
	})
	e.update(func(s *model.State) *arm.Error { _, _, ae := s.PutScaleSet(e.set, body, false); return ae })
}

// converge runs passes until nothing is in flight and nothing pending, or fails.
func (e *env) converge() {
	e.t.Helper()
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		e.r.Pass(ctx)
		e.r.Wait()
		e.r.Pass(ctx)
		e.r.Wait()
		if p, _ := e.r.Pending(e.set.Key()); !p {
			return
		}
	}
	e.t.Fatal("did not converge")
}

func (e *env) live() []*model.Instance {
	var out []*model.Instance
	e.store.View(func(s *model.State) {
		if ss, ok := s.ScaleSets[e.set.Key()]; ok {
			out = ss.Live()
		}
	})
	return out
}

func TestCreateStartsEveryInstance(t *testing.T) {
	e := setup(t)
	e.putSet(3, false)
	e.converge()
	if len(e.k.inst) != 3 {
		t.Fatalf("kernel has %d instances", len(e.k.inst))
	}
	for _, in := range e.live() {
		o := e.k.inst[in.Netns]
		if o == nil || !o.Started {
			t.Errorf("%s not started", in.Name)
		}
		st := e.r.Instance(in.Netns)
		if st.ProvisioningState != "Succeeded" || st.PowerState != "running" {
			t.Errorf("%s status %+v", in.Name, st)
		}
	}
	// DNS knows each computer name.
	var names []string
	for _, z := range e.k.plan.DNS {
		for _, rec := range z.Records {
			names = append(names, rec.Name+"="+rec.IP.String())
		}
	}
	if strings.Join(names, ",") != "web000000=10.0.0.4,web000001=10.0.0.5,web000002=10.0.0.6" {
		t.Errorf("dns %v", names)
	}
	if e.r.Applied() < 1 {
		t.Error("applied seq not advanced")
	}
}

func TestScaleInDrainsAndRemoves(t *testing.T) {
	e := setup(t)
	e.putSet(3, false)
	e.converge()
	e.update(func(s *model.State) *arm.Error { _, ae := s.Scale(e.set, 1); return ae })
	e.converge()
	if got := len(e.live()); got != 1 || len(e.k.inst) != 1 {
		t.Fatalf("live %d, kernel %d", got, len(e.k.inst))
	}
	var n int
	e.store.View(func(s *model.State) { n = len(s.ScaleSets[e.set.Key()].Instances) })
	if n != 1 {
		t.Errorf("deleted records kept: %d", n)
	}
	if e.k.count("drain:") != 2 {
		t.Errorf("drained %d instances before delete, want 2", e.k.count("drain:"))
	}
}

func TestOrphansAndPartialInstancesAreRepaired(t *testing.T) {
	e := setup(t)
	e.putSet(2, false)
	e.converge()
	// A leftover from a crashed daemon, and a half-built instance.
	e.k.inst["vmss-rg-ghost_9"] = &Observed{Complete: true}
	in := e.live()[0]
	e.k.inst[in.Netns].Complete = false
	e.k.inst[in.Netns].Started = false
	e.converge()
	if _, ok := e.k.inst["vmss-rg-ghost_9"]; ok {
		t.Error("orphan instance not deleted")
	}
	if o := e.k.inst[in.Netns]; o == nil || !o.Complete || !o.Started {
		t.Errorf("partial instance not rebuilt: %+v", o)
	}
}

func TestPowerRestartReimage(t *testing.T) {
	e := setup(t)
	e.putSet(2, false)
	e.converge()
	in := e.live()[1]
	e.update(func(s *model.State) *arm.Error {
		_, ae := s.SetPower(e.set, []string{"1"}, model.PowerStopped)
		return ae
	})
	e.converge()
	if e.k.inst[in.Netns].Started || e.r.Instance(in.Netns).PowerState != "stopped" {
		t.Fatalf("powerOff: %+v %+v", e.k.inst[in.Netns], e.r.Instance(in.Netns))
	}
	e.update(func(s *model.State) *arm.Error {
		_, ae := s.SetPower(e.set, []string{"1"}, model.PowerRunning)
		return ae
	})
	e.converge()
	if !e.k.inst[in.Netns].Started {
		t.Fatal("start did not start")
	}
	before := e.k.count("stop:" + in.Netns)
	e.update(func(s *model.State) *arm.Error { _, ae := s.Restart(e.set, []string{"1"}); return ae })
	e.converge()
	if e.k.count("stop:"+in.Netns) != before+1 || e.k.inst[in.Netns].RestartGen != 1 {
		t.Errorf("restart: stops %d, gen %d", e.k.count("stop:"+in.Netns), e.k.inst[in.Netns].RestartGen)
	}
	creates := e.k.count("create:" + in.Netns)
	e.update(func(s *model.State) *arm.Error { _, ae := s.Reimage(e.set, []string{"1"}); return ae })
	e.converge()
	if e.k.count("create:"+in.Netns) != creates+1 || e.k.count("delete:"+in.Netns) != 1 || e.k.inst[in.Netns].BuildGen != 1 {
		t.Errorf("reimage: creates %d deletes %d", e.k.count("create:"+in.Netns), e.k.count("delete:"+in.Netns))
	}
	if spec := e.k.specs[in.Netns]; spec.Addr.Addr() != netip.MustParseAddr("10.0.0.5") || spec.ComputerName != "web000001" {
		t.Errorf("reimage changed identity: %+v", spec)
	}
}

func TestOverprovisionTrimsExtras(t *testing.T) {
	e := setup(t)
	e.putSet(3, true)
	e.converge()
	if got := len(e.live()); got != 3 {
		t.Fatalf("live after overprovisioned create: %d", got)
	}
	if len(e.k.inst) != 3 {
		t.Errorf("kernel keeps %d instances, want 3", len(e.k.inst))
	}
	if e.k.count("create:") != 6 {
		t.Errorf("created %d, want 6 (2x)", e.k.count("create:"))
	}
}

func TestFailureIsReportedAndRetried(t *testing.T) {
	e := setup(t)
	e.putSet(1, false)
	var netns string
	e.store.View(func(s *model.State) { netns = s.ScaleSets[e.set.Key()].Instances["0"].Netns })
	e.k.fail["create:"+netns] = errors.New("boom")
	e.converge()
	_, err := e.r.Pending(e.set.Key())
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("failure not reported: %v", err)
	}
	if st := e.r.Instance(netns); st.ProvisioningState != "Failed" || !strings.Contains(st.Error, "boom") {
		t.Errorf("status %+v", st)
	}
	// Backoff (an hour here) holds retries back.
	n := e.k.count("create:")
	e.r.Pass(context.Background())
	e.r.Wait()
	if e.k.count("create:") != n {
		t.Error("retried before the backoff")
	}
	delete(e.k.fail, "create:"+netns)
	e.r.mu.Lock()
	e.r.inst[netns].retryAt = time.Time{}
	e.r.mu.Unlock()
	e.converge()
	if _, err := e.r.Pending(e.set.Key()); err != nil {
		t.Errorf("still failing after the cause went away: %v", err)
	}
}

func TestRestartOfTheDaemonAdopts(t *testing.T) {
	e := setup(t)
	e.putSet(3, false)
	e.converge()
	creates := e.k.count("create:")
	// A new reconciler (daemon restart): in-process serving is gone.
	for _, o := range e.k.inst {
		o.Started = false
	}
	e.r = New(e.store, e.k, Options{Backoff: time.Hour})
	e.converge()
	if e.k.count("create:") != creates {
		t.Error("restart rebuilt instances that were complete")
	}
	for _, o := range e.k.inst {
		if !o.Started {
			t.Error("instance not started again after restart")
		}
	}
}

func TestDeleteScaleSetAndVNet(t *testing.T) {
	e := setup(t)
	e.putSet(2, false)
	e.converge()
	e.update(func(s *model.State) *arm.Error { _, ae := s.Delete(e.set); return ae })
	e.converge()
	if len(e.k.inst) != 0 {
		t.Fatalf("%d instances left", len(e.k.inst))
	}
	var gone bool
	e.store.View(func(s *model.State) { _, ok := s.ScaleSets[e.set.Key()]; gone = !ok })
	if !gone {
		t.Fatal("scale set record kept")
	}
	vnet := arm.MustID(sub0, "rg", arm.TypeVirtualNetwork, "vnet")
	e.update(func(s *model.State) *arm.Error { _, ae := s.Delete(vnet); return ae })
	e.r.Pass(context.Background())
	e.r.Pass(context.Background())
	if len(e.k.vnets) != 0 {
		t.Errorf("vnet namespace kept: %v", e.k.vnets)
	}
	if p, _ := e.r.Pending(vnet.Key()); p {
		t.Error("vnet delete still pending")
	}
}

// TestPanicFailsTheInstanceNotTheDaemon: a flow that panics (as a bad
// health interval once made time.NewTicker do) marks its instance Failed
// with backoff; the other instances converge; a panicking data plane is
// reported and retried; the cause gone, the instance recovers.
func TestPanicFailsTheInstanceNotTheDaemon(t *testing.T) {
	e := setup(t)
	e.putSet(2, false)
	var bad, good string
	e.store.View(func(s *model.State) {
		bad, good = s.ScaleSets[e.set.Key()].Instances["0"].Netns, s.ScaleSets[e.set.Key()].Instances["1"].Netns
	})
	e.k.mu.Lock()
	e.k.panics["start:"+bad] = "non-positive interval for NewTicker"
	e.k.mu.Unlock()
	e.converge()
	st := e.r.Instance(bad)
	if st.ProvisioningState != "Failed" || !strings.Contains(st.Error, "non-positive interval for NewTicker") {
		t.Fatalf("instance whose flow panicked: %+v; want Failed naming the panic", st)
	}
	if st := e.r.Instance(good); st.ProvisioningState != "Succeeded" || st.PowerState != "running" {
		t.Fatalf("the other instance: %+v; want Succeeded and running", st)
	}
	// Backoff (an hour here) holds retries back.
	n := e.k.count("start:" + bad)
	e.r.Pass(context.Background())
	e.r.Wait()
	if e.k.count("start:"+bad) != n {
		t.Error("retried a panicking flow before the backoff")
	}
	// The data plane panics: the loop lives on.
	e.k.mu.Lock()
	e.k.panics["plan"] = "plan bug"
	e.k.mu.Unlock()
	plans := e.k.count("plan")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.r.Run(ctx); close(done) }()
	if !waitUntil(func() bool { return e.k.count("plan") > plans }) {
		t.Fatal("Run made no pass")
	}
	e.r.Trigger()
	if !waitUntil(func() bool { return e.k.count("plan") > plans+1 }) {
		t.Fatal("Run stopped passing after the data plane panicked")
	}
	cancel()
	<-done
	// The cause gone, the instance recovers.
	e.k.mu.Lock()
	delete(e.k.panics, "start:"+bad)
	delete(e.k.panics, "plan")
	e.k.mu.Unlock()
	e.r.mu.Lock()
	e.r.inst[bad].retryAt = time.Time{}
	e.r.mu.Unlock()
	e.converge()
	if st := e.r.Instance(bad); st.ProvisioningState != "Succeeded" || st.PowerState != "running" {
		t.Fatalf("after the cause went away: %+v", st)
	}
}

func waitUntil(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}

// TestPassWhileAFlowRuns: passes keep observing while a flow is in the
// middle of its steps; the flow works from what was observed when it
// started (run with -race: it once read the status passes rewrite).
func TestPassWhileAFlowRuns(t *testing.T) {
	e := setup(t)
	e.putSet(1, false)
	e.converge()
	var netns string
	e.store.View(func(s *model.State) { netns = s.ScaleSets[e.set.Key()].Instances["0"].Netns })
	release := make(chan struct{})
	e.k.mu.Lock()
	e.k.block["drain:"+netns] = release
	e.k.mu.Unlock()
	e.update(func(s *model.State) *arm.Error { _, ae := s.Reimage(e.set, []string{"0"}); return ae })
	ctx := context.Background()
	e.r.Pass(ctx) // starts the rebuild, which waits in Drain
	if !waitUntil(func() bool { return e.k.count("drain:"+netns) == 1 }) {
		t.Fatal("the rebuild did not start")
	}
	// Passes keep observing, concurrently with the flow's next steps.
	passes := make(chan struct{})
	go func() {
		defer close(passes)
		for i := 0; i < 20; i++ {
			e.r.Pass(ctx)
		}
	}()
	close(release)
	<-passes
	e.r.Wait()
	e.converge()
	if n := e.k.count("delete:" + netns); n != 1 {
		t.Errorf("old build removed %d times; want 1", n)
	}
	if st := e.r.Instance(netns); st.ProvisioningState != "Succeeded" || st.PowerState != "running" {
		t.Errorf("after the rebuild: %+v", st)
	}
}

// TestPanicUnderTheLockReleasesIt: a panic inside a locked section of a
// pass is recovered by guard without leaving the reconciler locked.
func TestPanicUnderTheLockReleasesIt(t *testing.T) {
	e := setup(t)
	err := e.r.guard("testing", func() error {
		e.r.mu.Lock()
		u := e.r.unlockOnPanic()
		defer u.release()
		var m map[string]int
		m["x"]++ // a bug
		u.done()
		e.r.mu.Unlock()
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "internal error while testing") {
		t.Fatalf("guard: %v", err)
	}
	if !e.r.mu.TryLock() {
		t.Fatal("the reconciler stayed locked after the panic")
	}
	e.r.mu.Unlock()
	// Positive control: without a panic the section unlocks once.
	if err := e.r.guard("testing", func() error {
		e.r.mu.Lock()
		u := e.r.unlockOnPanic()
		defer u.release()
		u.done()
		e.r.mu.Unlock()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !e.r.mu.TryLock() {
		t.Fatal("locked after a clean section")
	}
	e.r.mu.Unlock()
	e.putSet(1, false)
	e.converge()
}

// Passes share the snapshot of the state and its desired instances while
// the state does not change, and take a new one when it does.
func TestSnapshotReusedUntilTheStateChanges(t *testing.T) {
	e := setup(t)
	e.putSet(3, false)
	s1, d1 := e.r.snapshot()
	s2, d2 := e.r.snapshot()
	if s1 != s2 || len(d1) != 3 || &d1[0] != &d2[0] {
		t.Errorf("unchanged state: a new snapshot (%p, %p) or desired instances (%d)", s1, s2, len(d1))
	}
	e.converge()
	e.putSet(5, false)
	s3, d3 := e.r.snapshot()
	if s3 == s1 || len(d3) != 5 {
		t.Errorf("after a change: same snapshot %v, %d desired instances, want a new one with 5", s3 == s1, len(d3))
	}
	e.converge()
	if got := len(e.k.inst); got != 5 {
		t.Errorf("%d instances in the kernel, want 5", got)
	}
	var records int
	for _, z := range e.k.plan.DNS {
		records += len(z.Records)
	}
	if records != 5 {
		t.Errorf("%d DNS records, want 5", records)
	}
}

// The pause before a pass is twice the last pass, within bounds.
func TestPassPause(t *testing.T) {
	for _, tc := range []struct{ last, want time.Duration }{
		{0, 2 * time.Millisecond},
		{time.Millisecond, 2 * time.Millisecond},
		{40 * time.Millisecond, 80 * time.Millisecond},
		{time.Second, 500 * time.Millisecond},
	} {
		if got := passPause(tc.last); got != tc.want {
			t.Errorf("passPause(%v) = %v, want %v", tc.last, got, tc.want)
		}
	}
}
