package nsnet

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// origin is the network namespace of the process: the namespace every
// unlocked OS thread is in. It is opened once, from an unlocked thread, and
// kept open for the life of the process.
var origin = sync.OnceValues(func() (netns.NsHandle, error) {
	type result struct {
		h   netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// A fresh goroutine on an unlocked thread sees the process namespace.
		h, err := netns.Get()
		ch <- result{h, err}
	}()
	r := <-ch
	if r.err != nil {
		return netns.None(), fmt.Errorf("open the process network namespace: %w", r.err)
	}
	return r.h, nil
})

// Do runs fn on an OS thread switched into the network namespace at nsPath
// (for example /run/netns/NAME) and returns fn's error. An empty nsPath runs
// fn directly, in the process namespace.
//
// fn runs on its own goroutine, locked to its thread; Do waits for it. Sockets
// fn creates belong to the namespace for their whole life and may be used
// from any goroutine afterwards. Processes fn starts with os/exec land in the
// namespace too. fn must not start goroutines that expect to be in the
// namespace: they run on other threads.
//
// When the thread cannot be switched back, it stays locked and its goroutine
// ends, so the Go runtime discards the thread instead of reusing it. A panic
// in fn is re-raised in the caller's goroutine.
func Do(nsPath string, fn func() error) error {
	if nsPath == "" {
		return fn()
	}
	target, err := open(nsPath)
	if err != nil {
		return err
	}
	defer target.Close()
	return doIn(target, nsPath, fn)
}

// open opens a namespace file, with an error that says what to check.
func open(nsPath string) (netns.NsHandle, error) {
	h, err := netns.GetFromPath(nsPath)
	if err != nil {
		return netns.None(), fmt.Errorf("open network namespace %s: %w (list existing ones with `ip netns list`)", nsPath, err)
	}
	return h, nil
}

// doIn is Do with an already opened target namespace.
func doIn(target netns.NsHandle, nsPath string, fn func() error) error {
	home, err := origin()
	if err != nil {
		return err
	}
	type result struct {
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() { done <- r }()
		runtime.LockOSThread()
		if err := unix.Setns(int(target), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			r.err = fmt.Errorf("enter network namespace %s: %w", nsPath, err)
			return
		}
		r.err, r.panic = call(fn)
		if err := unix.Setns(int(home), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked: the runtime discards it when this
			// goroutine returns. fn's result stands; report the failure too.
			r.err = errors.Join(r.err, fmt.Errorf("return from network namespace %s: %w (thread discarded)", nsPath, err))
			return
		}
		runtime.UnlockOSThread()
	}()
	r := <-done
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}

// call runs fn and captures a panic instead of letting it unwind past the
// namespace restore.
func call(fn func() error) (err error, p any) {
	defer func() {
		if v := recover(); v != nil {
			p = v
		}
	}()
	return fn(), nil
}
