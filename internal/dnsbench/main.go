package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/vmss-emulator/vmss/dns"
	"github.com/vmss-emulator/vmss/nsnet"
	"github.com/vmss-emulator/vmss/vnet"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("dnsbench", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	netns := flag.String("netns", "", "VNET namespace to create (must start with vmss and not exist)")
	records := flag.Int("records", 100, "number of names (1 to 60000)")
	hostsFile := flag.String("hosts", "", "write the names as a hosts file here (for dnsmasq)")
	queriesFile := flag.String("queries", "", "write a dnsperf query file here (A of each FQDN)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run here")
	flag.Parse()
	switch {
	case !strings.HasPrefix(*netns, "vmss"):
		return fmt.Errorf("-netns %q: want a name starting with vmss", *netns)
	case *records < 1 || *records > 60000:
		return fmt.Errorf("-records %d: want 1 to 60000", *records)
	case nsnet.Exists(*netns):
		return fmt.Errorf("namespace %s exists already; choose another -netns", *netns)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	prefix := netip.MustParsePrefix("10.0.0.0/16")
	suffix := dns.SuffixFor("dnsbench")
	srv, err := dns.New(dns.Config{Suffix: suffix, Prefixes: []netip.Prefix{prefix}})
	if err != nil {
		return err
	}
	var recs []dns.Record
	var hosts, queries strings.Builder
	base := prefix.Addr().As4()
	for i := range *records {
		n := 4 + i
		ip := netip.AddrFrom4([4]byte{base[0], base[1], byte(n >> 8), byte(n)})
		name := fmt.Sprintf("web%06d", i)
		recs = append(recs, dns.Record{Name: name, IP: ip})
		fmt.Fprintf(&hosts, "%s %s.%s %s\n", ip, name, suffix, name)
		fmt.Fprintf(&queries, "%s.%s A\n", name, suffix)
	}
	if err := srv.SetRecords(recs); err != nil {
		return err
	}
	for _, f := range []struct{ path, text string }{{*hostsFile, hosts.String()}, {*queriesFile, queries.String()}} {
		if f.path != "" {
			if err := os.WriteFile(f.path, []byte(f.text), 0o644); err != nil {
				return err
			}
		}
	}

	var m vnet.Manager
	if err := m.Ensure(ctx, vnet.Spec{Netns: *netns, Subnets: []vnet.Subnet{{Prefix: prefix}}}); err != nil {
		return err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := m.Delete(dctx, *netns); err != nil {
			log.Error("delete the VNET namespace", "netns", *netns, "err", err)
		}
	}()
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe(sctx, nsnet.Path(*netns), "") }()
	defer func() { cancel(); <-done }()
	// Ready once TCP answers (it is bound after UDP).
	for {
		c, err := nsnet.Dialer(nsnet.Path(*netns))(ctx, "tcp", dns.Addr)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-done:
			done <- err
			return errors.Join(errors.New("DNS server stopped"), err)
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Millisecond):
		}
	}
	fmt.Println("ready", suffix)
	select {
	case <-ctx.Done():
		return nil
	case err := <-done:
		done <- err
		return fmt.Errorf("DNS server stopped: %w", err)
	}
}
