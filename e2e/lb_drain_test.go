package e2e

// End-to-end tests of draining: scale-out and scale-in, and instance
// operations, without a failed request.

import (
	"fmt"
	"testing"
	"time"
)

// Scale 3 → 10 → 3 under steady load (new connection per request): not one
// request fails; new instances join once probed up, removed ones drain.
func TestLBDrainScaleOutIn(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{ProbeScale: "0.05", Drain: "2s"})
	url := lbCreateUp(e, "web", 3, webapp)

	rs := lbWithLoad(url, 4, func() {
		e.MustCLI("scale", "-n", "web", "--new-capacity", "10", "-o", "none")
		lbWaitAllUp(e, "webLB", "", "web", 60*time.Second)
		time.Sleep(500 * time.Millisecond)
		e.MustCLI("scale", "-n", "web", "--new-capacity", "3", "-o", "none")
		Eventually(t, 60*time.Second, "scale-in to 3", func() error {
			if n := len(e.Instances("web")); n != 3 {
				return fmt.Errorf("%d instances", n)
			}
			st, err := lbStates(e, "webLB", "")
			if err != nil || len(st) != 3 {
				return fmt.Errorf("backends %v %v", st, err)
			}
			return nil
		})
	})
	per, errs, nerr := lbSummary(rs)
	t.Logf("%d requests during 3 → 10 → 3: %v", len(rs), per)
	if nerr != 0 {
		t.Fatalf("%d of %d requests failed while scaling: %v", nerr, len(rs), errs)
	}
	if len(per) < 5 {
		t.Errorf("only instances %v answered; the new ones never joined", per)
	}
	if len(rs) < 200 {
		t.Errorf("only %d requests in the whole run; the load did not run", len(rs))
	}
}

// Restart, reimage, stop/start and delete-instances under steady load: each
// instance drains before its app goes away and rejoins once probed up, so no
// request fails.
func TestLBNoFailuresThroughInstanceOperations(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{ProbeScale: "0.05", Drain: "2s"})
	url := lbCreateUp(e, "web", 4, webapp)

	rs := lbWithLoad(url, 4, func() {
		for _, op := range [][]string{
			{"restart", "-n", "web", "--instance-ids", "1"},
			{"reimage", "-n", "web", "--instance-ids", "2"},
			{"stop", "-n", "web", "--instance-ids", "3"},
			{"start", "-n", "web", "--instance-ids", "3"},
			{"delete-instances", "-n", "web", "--instance-ids", "0"},
		} {
			e.MustCLI(append(op, "-o", "none")...)
			lbWaitAllUp(e, "webLB", "", "web", 60*time.Second)
			time.Sleep(200 * time.Millisecond)
		}
	})
	per, errs, nerr := lbSummary(rs)
	t.Logf("%d requests through restart, reimage, stop, start and delete: %v", len(rs), per)
	if nerr != 0 {
		t.Fatalf("%d of %d requests failed: %v", nerr, len(rs), errs)
	}
	if len(per) != 4 || per["0"] == 0 {
		t.Errorf("answers per instance %v, want all four instances (0 before its deletion)", per)
	}
	if n := len(e.Instances("web")); n != 3 {
		t.Errorf("%d instances left, want 3", n)
	}
}
