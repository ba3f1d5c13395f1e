// Command loopbench runs the pieces of scripts/bench-lb-loopback.sh: a
// webapp backend, or a load balancer engine with one Tcp round-robin rule,
// on loopback addresses, until interrupted.
//
//	loopbench webapp -addr 127.77.1.1:8080 -name web000001 -id 1
//	loopbench lb -frontend 127.77.0.10:8080 -backends 127.77.1.1,127.77.1.2 -port 8080 [-cpuprofile f]
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/vmss-emulator/vmss/lb"
	"github.com/vmss-emulator/vmss/proxy"
	"github.com/vmss-emulator/vmss/webapp"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loopbench webapp|lb [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "webapp":
		fs := flag.NewFlagSet("webapp", flag.ExitOnError)
		addr := fs.String("addr", "127.0.0.1:8080", "listen address")
		name := fs.String("name", "web000000", "computer name")
		id := fs.String("id", "0", "instance id")
		fs.Parse(os.Args[2:])
		err = webapp.Run(ctx, *addr, *name, *id)
	case "lb":
		err = runLB(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loopbench:", err)
		os.Exit(1)
	}
}

func runLB(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("lb", flag.ExitOnError)
	front := fs.String("frontend", "127.77.0.10:8080", "frontend ip:port")
	backends := fs.String("backends", "127.77.1.1,127.77.1.2,127.77.1.3", "backend IPs, comma separated")
	port := fs.Int("port", 8080, "backend port")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile here")
	fs.Parse(args)
	if _, err := proxy.RaiseFileLimit(0); err != nil {
		return err
	}
	fe, err := netip.ParseAddrPort(*front)
	if err != nil {
		return err
	}
	pool := lb.Pool{Name: "be"}
	for i, s := range strings.Split(*backends, ",") {
		ip, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		pool.Backends = append(pool.Backends, lb.Backend{Name: fmt.Sprintf("b%d", i), Addr: ip})
	}
	eng, err := lb.New(lb.Options{Name: "bench"})
	if err != nil {
		return err
	}
	defer eng.Close()
	err = eng.Apply(ctx, lb.Config{
		Pools:  []lb.Pool{pool},
		Probes: []lb.Probe{{Name: "tcp", Protocol: lb.Tcp, Port: *port, Interval: time.Second}},
		Rules: []lb.Rule{{Name: "http", Frontend: fe.Addr(), FrontendPort: int(fe.Port()), BackendPort: *port,
			BackendPool: "be", Probe: "tcp"}},
	})
	if err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	fmt.Println("ready")
	<-ctx.Done()
	return nil
}
