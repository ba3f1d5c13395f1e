package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// Two cores: a and b run; b is preempted on cpu1 by c; a goes to sleep on
// cpu0, which idles for 1 s while b waits on cpu1; then b is moved to cpu0.
const trace = `
        swapper     0/0     [000]     0.000000: sched:sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=a next_pid=10 next_prio=120
        swapper     0/0     [001]     0.000000: sched:sched_switch: prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=b next_pid=20 next_prio=120
              b    20/20    [001]     1.000000: sched:sched_wakeup: comm=c pid=30 prio=120 target_cpu=001
              b    20/20    [001]     1.000000: sched:sched_switch: prev_comm=b prev_pid=20 prev_prio=120 prev_state=R+ ==> next_comm=c next_pid=30 next_prio=120
              a    10/10    [000]     2.000000: sched:sched_switch: prev_comm=a prev_pid=10 prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120
        swapper     0/0     [000]     3.000000: sched:sched_migrate_task: comm=b pid=20 prio=120 orig_cpu=1 dest_cpu=0
        swapper     0/0     [000]     3.000000: sched:sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=b next_pid=20 next_prio=120
              c    30/30    [001]     4.000000: sched:sched_switch: prev_comm=c prev_pid=30 prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120
              b    20/20    [000]     5.000000: sched:sched_switch: prev_comm=b prev_pid=20 prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120
`

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestStrandedIdle(t *testing.T) {
	r, err := analyse(strings.NewReader(trace))
	if err != nil {
		t.Fatal(err)
	}
	if !near(r.span, 5) {
		t.Errorf("span %v, want 5", r.span)
	}
	// cpu0 idles from 2 to 3 (b queued on cpu1: stranded); cpu1 from 4 to 5 (nothing queued).
	if !near(r.idle[0], 1) || !near(r.stranded[0], 1) {
		t.Errorf("cpu0 idle %v stranded %v, want 1 and 1", r.idle[0], r.stranded[0])
	}
	if !near(r.idle[1], 1) || !near(r.stranded[1], 0) {
		t.Errorf("cpu1 idle %v stranded %v, want 1 and 0", r.idle[1], r.stranded[1])
	}
	if !near(r.queuedBy["b:20"], 1) || len(r.queuedBy) != 1 {
		t.Errorf("queued during stranded idle: %v, want b:20 for 1 s only", r.queuedBy)
	}
	if r.leftIdle["a:10"] != 1 || r.leftIdle["c:30"] != 0 {
		t.Errorf("left idle: %v, want a:10 once (c left nothing queued)", r.leftIdle)
	}
	if r.preempts["b:20"] != 1 || r.sleeps["b:20"] != 1 || r.sleeps["a:10"] != 1 {
		t.Errorf("switches: preempted %v, slept %v", r.preempts, r.sleeps)
	}
	var out bytes.Buffer
	r.print(&out)
	for _, want := range []string{"cpu0 idle 20.00%, stranded (another core had a queue) 20.00%", "b:20"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestNoEventsIsAnError(t *testing.T) {
	if _, err := analyse(strings.NewReader("not a trace\n")); err == nil || !strings.Contains(err.Error(), "perf script") {
		t.Errorf("err = %v, want one that says how to record", err)
	}
}
