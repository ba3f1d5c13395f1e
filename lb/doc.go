// Package lb emulates an Azure load balancer's data plane: the
// loadBalancingRules of one load balancer, their backend pools and health
// probes, as userspace TCP/UDP proxies.
//
// An Engine owns everything for one load balancer. Engine.Apply reconciles
// the desired Config idempotently: a rule whose frontend (address, port,
// protocol) is unchanged keeps its listener and its established flows, and
// picks up new settings for new connections; probes whose settings are
// unchanged keep running. Pool membership also changes live with
// AddBackend, Drain and RemoveBackend. Snapshot reports rules, pools,
// per-backend probe state and traffic for `vmss lb show` and the API;
// Prometheus metrics go to the Registerer given in Options. Close stops
// every listener, flow, prober and timer and waits for their goroutines.
//
// Semantics (Azure's, with the emulator's choices marked):
//
//   - Distribution: Default spreads new connections round-robin over the
//     healthy backends (emulator choice; Azure hashes the 5-tuple).
//     SourceIP (2-tuple) and SourceIPProtocol (3-tuple) keep a client on
//     one backend (rendezvous hashing, so pool changes move few clients).
//     A backend that refuses the connection is skipped for the next one.
//   - Probes: Tcp (handshake), Http and Https (GET requestPath; Https does
//     not verify certificates). Only HTTP 200 is healthy; any other code,
//     no answer within min(interval, 30 s), or a reset is a failure.
//     Interval defaults to 15 s. probeThreshold consecutive results change
//     the state, numberOfProbes when only it is given, else 1. One probe
//     at most is in flight per backend and probe. Probes dial through
//     Pool.ProbeDial (the daemon makes them come from 168.63.129.16).
//   - Initial state (emulator choice, as Azure): a new backend with a probe
//     is Unknown and gets no new flows until threshold probes succeed; the
//     first probe is sent at once. A rule without a probe treats every
//     member as up.
//   - One backend down: new flows go to the others; established flows
//     continue. All down: noHealthyBackendsBehavior AllProbedDown (default)
//     resets new clients; AllProbedUp sends to every member.
//   - Drain: the backend leaves the rotation at once; its established flows
//     get the drain period (Pool.DrainPeriod, default 30 s), then are reset
//     and the backend is removed. It is removed earlier when its last flow
//     ends.
//   - Idle timeout: idleTimeoutInMinutes (default 4 min) drops idle flows
//     silently, or resets both sides with enableTcpReset.
//
// Typical usage:
//
//	eng, err := lb.New(lb.Options{Name: "myLB", Registerer: reg})
//	err = eng.Apply(ctx, lb.Config{Pools: ..., Probes: ..., Rules: ...})
//	done, err := eng.Drain("bepool", "vmss_3", 0) // scale-in
//	<-done
//	snap := eng.Snapshot()
//	eng.Close()
//
// Non-goals: inbound NAT (package nat), outbound rules/SNAT, floating IP
// (accepted by the daemon, not emulated), HA ports (protocol All), client
// source address preservation (a userspace proxy cannot).
package lb
