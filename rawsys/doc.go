// Package rawsys makes the socket system calls of the load balancer's
// event loops without entering the Go scheduler's system-call state.
//
// A goroutine's system call normally tells the scheduler it has entered the
// kernel, and sysmon hands its P to another thread when the call lasts
// longer than a tick (20 µs) while other work waits or no P is idle. On a
// busy host that is most calls of a proxy: every connect, write and close
// wakes a task (the backend accepting, the client reading), and the kernel
// often switches to that task before the call returns. The P is then
// taken, another thread is woken to run it, and the loop's thread, back
// from the kernel, finds its P gone and sleeps until it gets one: two
// context switches and a hand-over for nothing, since the call itself never
// waited.
//
// The calls here are for non-blocking sockets only, which never wait in
// the kernel: made raw, the P stays with the goroutine for the length of
// the call, as it would for any other short piece of work. Never use them
// on a descriptor that can block.
package rawsys
