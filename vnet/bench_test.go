package vnet

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/vmss-emulator/vmss/nsnet"
)

// BenchmarkAttach100 measures attaching 100 instances to one subnet; one
// op is 100 attaches. Creating and removing the instance namespaces is not
// timed. "seq" attaches one after the other, "par4" from 4 goroutines.
func BenchmarkAttach100(b *testing.B) {
	requireRoot(b)
	var m Manager
	vn := newVNET(b, &m, "10.0.0.0/16")
	for _, workers := range []int{1, 4} {
		name := "seq"
		if workers > 1 {
			name = fmt.Sprintf("par%d", workers)
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				insts := make([]string, 100)
				for j := range insts {
					insts[j] = uniq()
					if err := nsnet.Create(insts[j]); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				var wg sync.WaitGroup
				work := make(chan int)
				for range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for j := range work {
							ip := netip.AddrFrom4([4]byte{10, 0, byte(j / 200), byte(4 + j%200)})
							nic := NIC{InstanceNetns: insts[j], Bridge: "vmssbr0", Addr: netip.PrefixFrom(ip, 16)}
							if err := m.Attach(ctx, vn, nic); err != nil {
								b.Error(err)
							}
						}
					}()
				}
				for j := range insts {
					work <- j
				}
				close(work)
				wg.Wait()
				b.StopTimer()
				removeAll(b, &m, vn, insts)
				b.StartTimer()
			}
		})
	}
}

// removeAll detaches instances in one batch and removes their namespaces.
func removeAll(b *testing.B, m *Manager, vn string, insts []string) {
	veths := make([]string, len(insts))
	for i, n := range insts {
		veths[i] = VethName(n)
	}
	if err := m.Detach(context.Background(), vn, veths...); err != nil {
		b.Error(err)
	}
	for _, n := range insts {
		if err := nsnet.Remove(n); err != nil {
			b.Error(err)
		}
	}
}

// BenchmarkDetach100 measures detaching 100 attached instances; one op is
// 100 detaches. "each" calls Detach per instance, one after the other,
// "batch" once for all, "concurrent" per instance from 16 goroutines (as
// deletes of many instances do; the calls coalesce).
func BenchmarkDetach100(b *testing.B) {
	requireRoot(b)
	var m Manager
	vn := newVNET(b, &m, "10.0.0.0/16")
	for _, name := range []string{"each", "batch", "concurrent"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				insts := make([]string, 100)
				veths := make([]string, 100)
				for j := range insts {
					insts[j] = uniq()
					veths[j] = VethName(insts[j])
					if err := nsnet.Create(insts[j]); err != nil {
						b.Fatal(err)
					}
					ip := netip.AddrFrom4([4]byte{10, 0, 1, byte(4 + j)})
					if err := m.Attach(ctx, vn, NIC{InstanceNetns: insts[j], Bridge: "vmssbr0", Addr: netip.PrefixFrom(ip, 16)}); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				switch name {
				case "batch":
					if err := m.Detach(ctx, vn, veths...); err != nil {
						b.Fatal(err)
					}
				case "each":
					for _, v := range veths {
						if err := m.Detach(ctx, vn, v); err != nil {
							b.Fatal(err)
						}
					}
				case "concurrent":
					var wg sync.WaitGroup
					sem := make(chan struct{}, 16)
					for _, v := range veths {
						wg.Go(func() {
							sem <- struct{}{}
							defer func() { <-sem }()
							if err := m.Detach(ctx, vn, v); err != nil {
								b.Error(err)
							}
						})
					}
					wg.Wait()
				}
				b.StopTimer()
				removeAll(b, &m, vn, insts)
				b.StartTimer()
			}
		})
	}
}
