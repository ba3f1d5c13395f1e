package instance

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The main goroutine stays on the main thread, so TestMain can check what
// onDisposableThread does when called there.
func init() { runtime.LockOSThread() }

var mainThreadResult error

func TestMain(m *testing.M) {
	mainThreadResult = checkFromMainThread()
	os.Exit(m.Run())
}

func checkFromMainThread() error {
	if unix.Gettid() != unix.Getpid() {
		return fmt.Errorf("TestMain is not on the main thread")
	}
	var tid int
	onDisposableThread(func() { tid = unix.Gettid() })
	if tid == 0 || tid == unix.Getpid() {
		return fmt.Errorf("work ran on thread %d, the main thread is %d", tid, unix.Getpid())
	}
	if unix.Gettid() != unix.Getpid() {
		return fmt.Errorf("TestMain moved off the main thread")
	}
	return nil
}

func TestDisposableThreadAvoidsMainThread(t *testing.T) {
	if mainThreadResult != nil {
		t.Fatal(mainThreadResult)
	}
}

func TestDisposableThreadEnds(t *testing.T) {
	skipUnlessRoot(t)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	var tid int
	done := make(chan error, 1)
	go onDisposableThread(func() {
		tid = unix.Gettid()
		err := unix.Unshare(unix.CLONE_NEWUTS)
		if err == nil {
			err = unix.Sethostname([]byte("disposable"))
		}
		done <- err
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	task := "/proc/self/task/" + strconv.Itoa(tid)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(task); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("thread %d still exists after its work returned", tid)
		}
		time.Sleep(time.Millisecond)
	}
	if h, _ := os.Hostname(); h != host {
		t.Errorf("host name changed to %q", h)
	}
}
