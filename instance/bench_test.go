package instance

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkCreate100 creates 100 instances with 8 workers and deletes them
// again; it reports the create and delete rates and the CPU time per create.
// StateDir is on the disk that backs the test's temporary directory, or on
// tmpfs, to tell the namespace work from the disk's metadata latency.
func BenchmarkCreate100(b *testing.B) {
	b.Run("state=disk", func(b *testing.B) { benchmarkCreate100(b, newTestManager(b)) })
	b.Run("state=tmpfs", func(b *testing.B) {
		m := newTestManager(b)
		m.StateDir = filepath.Join("/dev/shm", filepath.Base(m.RuntimeDir))
		benchmarkCreate100(b, m)
	})
}

func benchmarkCreate100(b *testing.B, m *Manager) {
	ctx := context.Background()
	const n, workers = 100, 8
	parallel := func(fn func(i int) error) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		next := make(chan int)
		for w := 0; w < workers; w++ {
			wg.Go(func() {
				for i := range next {
					if err := fn(i); err != nil {
						b.Error(err)
					}
				}
			})
		}
		for i := 0; i < n; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		return time.Since(start)
	}
	var created, deleted, createCPU time.Duration
	for b.Loop() {
		cpu := cpuTime(b)
		created += parallel(func(i int) error { return m.Create(ctx, testSpec(m, fmt.Sprintf("b%03d", i))) })
		createCPU += cpuTime(b) - cpu
		deleted += parallel(func(i int) error { return m.Delete(ctx, m.Prefix+fmt.Sprintf("b%03d", i)) })
	}
	b.ReportMetric(float64(n*b.N)/created.Seconds(), "creates/s")
	b.ReportMetric(float64(n*b.N)/deleted.Seconds(), "deletes/s")
	b.ReportMetric(createCPU.Seconds()*1000/float64(n*b.N), "cpu-ms/create")
}

// cpuTime returns the CPU time (user and system) used so far by this
// process and its reaped children.
func cpuTime(b *testing.B) time.Duration {
	var total time.Duration
	for _, who := range []int{unix.RUSAGE_SELF, unix.RUSAGE_CHILDREN} {
		var ru unix.Rusage
		if err := unix.Getrusage(who, &ru); err != nil {
			b.Fatal(err)
		}
		total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return total
}

// reportCPU reports the CPU time per iteration since start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric((cpuTime(b)-start).Seconds()*1000/float64(b.N), "cpu-ms/op")
}

// BenchmarkCommandTrue runs `true` in an instance; compare with
// BenchmarkPlainTrue for the cost of entering the instance.
func BenchmarkCommandTrue(b *testing.B) {
	m := newTestManager(b)
	s := create(b, m, testSpec(m, "exec"))
	defer reportCPU(b, cpuTime(b))
	for b.Loop() {
		cmd, err := m.Command(context.Background(), s.Name, ExecRequest{Argv: []string{"true"}})
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPlainTrue(b *testing.B) {
	path, err := exec.LookPath("true")
	if err != nil {
		b.Fatal(err)
	}
	defer reportCPU(b, cpuTime(b))
	for b.Loop() {
		if err := exec.Command(path).Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInitMemory starts the init of 20 instances and reports the
// memory of one init: RSS (text pages shared with the daemon and the other
// inits included), PSS (shared pages divided among their users) and the
// private pages, from /proc/<pid>/smaps_rollup, of the init (a shell) and
// its sleep.
func BenchmarkInitMemory(b *testing.B) {
	m := newTestManager(b)
	const n = 20
	for i := 0; i < n; i++ {
		s := create(b, m, testSpec(m, fmt.Sprintf("m%02d", i)))
		run(b, m, s.Name, ExecRequest{Argv: []string{"true"}})
	}
	var rss, pss, private float64
	for b.Loop() {
		rss, pss, private = 0, 0, 0
		for i := 0; i < n; i++ {
			pid := m.initPid(fmt.Sprintf("%sm%02d", m.Prefix, i))
			kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
			if err != nil {
				b.Fatal(err)
			}
			for _, p := range append([]string{strconv.Itoa(pid)}, strings.Fields(string(kids))...) {
				q, _ := strconv.Atoi(p)
				f := smapsRollup(b, q)
				rss += f["Rss"]
				pss += f["Pss"]
				private += f["Private_Clean"] + f["Private_Dirty"]
			}
		}
	}
	b.ReportMetric(rss/n, "rss-KiB/init")
	b.ReportMetric(pss/n, "pss-KiB/init")
	b.ReportMetric(private/n, "private-KiB/init")
}

// smapsRollup returns the kB fields of /proc/<pid>/smaps_rollup.
func smapsRollup(b *testing.B, pid int) map[string]float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]float64{}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && f[2] == "kB" {
			v, _ := strconv.ParseFloat(f[1], 64)
			out[strings.TrimSuffix(f[0], ":")] = v
		}
	}
	return out
}
