package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

func main() {
	r, err := analyse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "schedidle:", err)
		os.Exit(1)
	}
	r.print(os.Stdout)
}

// event is one line of perf script -F comm,pid,tid,cpu,time,event,trace.
type event struct {
	comm     string
	pid, tid int
	cpu      int
	t        float64
	name     string // sched_switch, sched_wakeup, ...
	fields   map[string]string
}

var (
	lineRE  = regexp.MustCompile(`^\s*(.+?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+sched:(\w+):\s+(.*)$`)
	fieldRE = regexp.MustCompile(`(\w+)=(\S+)`)
)

// parse returns the event of a line, or false for lines that are not one.
func parse(line string) (event, bool) {
	m := lineRE.FindStringSubmatch(line)
	if m == nil {
		return event{}, false
	}
	e := event{comm: strings.TrimSpace(m[1]), name: m[6], fields: map[string]string{}}
	e.pid, _ = strconv.Atoi(m[2])
	e.tid, _ = strconv.Atoi(m[3])
	e.cpu, _ = strconv.Atoi(m[4])
	e.t, _ = strconv.ParseFloat(m[5], 64)
	for _, f := range fieldRE.FindAllStringSubmatch(strings.ReplaceAll(m[7], " ==> ", " "), -1) {
		e.fields[f[1]] = f[2]
	}
	return e, true
}

// report is what analyse found.
type report struct {
	span     float64
	idle     map[int]float64 // cpu -> seconds idle
	stranded map[int]float64 // cpu -> seconds idle while another cpu had a queue
	queuedBy map[string]float64
	leftIdle map[string]int // process whose thread's sleep left its core idle with a queue elsewhere
	sleeps   map[string]int
	preempts map[string]int
	threads  map[string]map[int]bool
}

func analyse(in io.Reader) (*report, error) {
	r := &report{idle: map[int]float64{}, stranded: map[int]float64{}, queuedBy: map[string]float64{},
		leftIdle: map[string]int{}, sleeps: map[string]int{}, preempts: map[string]int{}, threads: map[string]map[int]bool{}}
	proc := map[int]string{} // tid -> comm:pid, from the events it ran
	label := func(tid int) string {
		if p, ok := proc[tid]; ok {
			return p
		}
		return "?" + strconv.Itoa(tid)
	}
	curr := map[int]int{}               // cpu -> tid running (0: idle)
	queue := map[int]map[int]struct{}{} // cpu -> tids runnable, not running
	q := func(cpu int) map[int]struct{} {
		if queue[cpu] == nil {
			queue[cpu] = map[int]struct{}{}
		}
		return queue[cpu]
	}
	othersQueued := func(cpu int) bool {
		for c, s := range queue {
			if c != cpu && len(s) > 0 {
				return true
			}
		}
		return false
	}
	cpus := map[int]bool{}
	var first, last float64
	seen := false
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		e, ok := parse(sc.Text())
		if !ok {
			continue
		}
		cpus[e.cpu] = true
		if !seen {
			first, last, seen = e.t, e.t, true
		}
		// Account the time since the last event to the state it left.
		if dt := e.t - last; dt > 0 {
			for c := range cpus {
				if curr[c] != 0 {
					continue
				}
				r.idle[c] += dt
				if !othersQueued(c) {
					continue
				}
				r.stranded[c] += dt
				n := 0
				for oc, s := range queue {
					if oc != c {
						n += len(s)
					}
				}
				for oc, s := range queue {
					if oc == c {
						continue
					}
					for tid := range s {
						r.queuedBy[label(tid)] += dt / float64(n)
					}
				}
			}
		}
		last = e.t
		proc[e.tid] = e.comm + ":" + strconv.Itoa(e.pid)
		switch e.name {
		case "sched_switch":
			prev, _ := strconv.Atoi(e.fields["prev_pid"])
			next, _ := strconv.Atoi(e.fields["next_pid"])
			state := e.fields["prev_state"]
			if prev != 0 {
				p := label(prev)
				if r.threads[p] == nil {
					r.threads[p] = map[int]bool{}
				}
				r.threads[p][prev] = true
				if strings.HasPrefix(state, "R") {
					r.preempts[p]++
					q(e.cpu)[prev] = struct{}{}
				} else {
					r.sleeps[p]++
					if next == 0 && othersQueued(e.cpu) {
						r.leftIdle[p]++
					}
				}
			}
			for _, s := range queue {
				delete(s, next)
			}
			curr[e.cpu] = next
		case "sched_wakeup", "sched_wakeup_new":
			tid, _ := strconv.Atoi(e.fields["pid"])
			target, err := strconv.Atoi(e.fields["target_cpu"])
			if err != nil || curr[target] == tid {
				continue
			}
			q(target)[tid] = struct{}{}
		case "sched_migrate_task":
			tid, _ := strconv.Atoi(e.fields["pid"])
			from, _ := strconv.Atoi(e.fields["orig_cpu"])
			to, _ := strconv.Atoi(e.fields["dest_cpu"])
			if _, ok := q(from)[tid]; ok {
				delete(q(from), tid)
				q(to)[tid] = struct{}{}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the trace: %w", err)
	}
	if !seen {
		return nil, fmt.Errorf("no sched events in the input: record with -e sched:sched_switch -e sched:sched_wakeup and pipe perf script -F comm,pid,tid,cpu,time,event,trace")
	}
	r.span = last - first
	for c := range cpus {
		r.idle[c] += 0 // every core is listed, idle or not
	}
	return r, nil
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "span %.3f s\n", r.span)
	var cpus []int
	for c := range r.idle {
		cpus = append(cpus, c)
	}
	sort.Ints(cpus)
	for _, c := range cpus {
		fmt.Fprintf(w, "cpu%d idle %5.2f%%, stranded (another core had a queue) %5.2f%%\n",
			c, 100*r.idle[c]/r.span, 100*r.stranded[c]/r.span)
	}
	fmt.Fprintf(w, "\n%-28s %12s %10s %8s %9s %8s\n", "process", "queued_ms", "left_idle", "sleeps", "preempted", "threads")
	names := map[string]bool{}
	for _, m := range []map[string]int{r.sleeps, r.preempts} {
		for p := range m {
			names[p] = true
		}
	}
	var ps []string
	for p := range names {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if r.queuedBy[a] != r.queuedBy[b] {
			return r.queuedBy[a] > r.queuedBy[b]
		}
		return r.sleeps[a]+r.preempts[a] > r.sleeps[b]+r.preempts[b]
	})
	for i, p := range ps {
		if i == 15 {
			break
		}
		fmt.Fprintf(w, "%-28s %12.1f %10d %8d %9d %8d\n", p, 1000*r.queuedBy[p], r.leftIdle[p], r.sleeps[p], r.preempts[p], len(r.threads[p]))
	}
}
