package instance

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// BenchmarkCreate100 creates 100 instances with 8 workers and deletes them
// again; it reports the create and delete rates.
func BenchmarkCreate100(b *testing.B) {
	m := newTestManager(b)
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
	var created, deleted time.Duration
	for b.Loop() {
		created += parallel(func(i int) error { return m.Create(ctx, testSpec(m, fmt.Sprintf("b%03d", i))) })
		deleted += parallel(func(i int) error { return m.Delete(ctx, m.Prefix+fmt.Sprintf("b%03d", i)) })
	}
	b.ReportMetric(float64(n*b.N)/created.Seconds(), "creates/s")
	b.ReportMetric(float64(n*b.N)/deleted.Seconds(), "deletes/s")
}

// BenchmarkCommandTrue runs `true` in an instance; compare with
// BenchmarkPlainTrue for the cost of entering the instance.
func BenchmarkCommandTrue(b *testing.B) {
	m := newTestManager(b)
	s := create(b, m, testSpec(m, "exec"))
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
	for b.Loop() {
		if err := exec.Command(path).Run(); err != nil {
			b.Fatal(err)
		}
	}
}
