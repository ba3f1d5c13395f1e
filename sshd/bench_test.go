package sshd

import (
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Benchmarks use x/crypto's client in-process over loopback, with an
// ed25519 host key and an ed25519 client key; the Runner forks /bin/sh on
// the host, so the exec figures include a fork/exec.

// cpuTime is the CPU time used so far by this process (client and server)
// and its waited-for children (the sessions' programs).
func cpuTime() time.Duration {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return total
}

// reportCPU adds a cpu-ms/op metric: unlike ns/op it does not grow when
// other work shares the machine.
func reportCPU(b *testing.B, start time.Duration, perOp int) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N*perOp)/1e6, "cpu-ms/op")
}

func benchDial(b *testing.B, addr string, signer ssh.Signer) *ssh.Client {
	client, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User: testUser, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   ssh.InsecureIgnoreHostKey(),
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		Timeout:           10 * time.Second,
	})
	if err != nil {
		b.Fatal(err)
	}
	return client
}

func benchRun(b *testing.B, client *ssh.Client, command string) {
	sess, err := client.NewSession()
	if err != nil {
		b.Fatal(err)
	}
	if err := sess.Run(command); err != nil {
		b.Fatal(err)
	}
	sess.Close()
}

// BenchmarkHandshake: connect, key exchange, public key authentication.
func BenchmarkHandshake(b *testing.B) {
	c := newClient(b)
	ts := newTestServer(b, c)
	cpu := cpuTime()
	for b.Loop() {
		benchDial(b, ts.addr, c.signer).Close()
	}
	reportCPU(b, cpu, 1)
}

// BenchmarkHandshakeExec: a new connection running `true` (the target is
// at most 10 ms per operation).
func BenchmarkHandshakeExec(b *testing.B) {
	c := newClient(b)
	ts := newTestServer(b, c)
	cpu := cpuTime()
	for b.Loop() {
		client := benchDial(b, ts.addr, c.signer)
		benchRun(b, client, "true")
		client.Close()
	}
	reportCPU(b, cpu, 1)
}

// BenchmarkExec: one more session running `true` on an open connection.
func BenchmarkExec(b *testing.B) {
	c := newClient(b)
	ts := newTestServer(b, c)
	client := benchDial(b, ts.addr, c.signer)
	defer client.Close()
	cpu := cpuTime()
	for b.Loop() {
		benchRun(b, client, "true")
	}
	reportCPU(b, cpu, 1)
}

// BenchmarkConcurrent50: 50 clients at once, each connecting and running
// `true`; one operation is the whole batch.
func BenchmarkConcurrent50(b *testing.B) {
	c := newClient(b)
	ts := newTestServer(b, c)
	const n = 50
	cpu := cpuTime()
	for b.Loop() {
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := benchDial(b, ts.addr, c.signer)
				defer client.Close()
				benchRun(b, client, "true")
			}()
		}
		wg.Wait()
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/n/1e6, "ms/session")
	reportCPU(b, cpu, n)
}
