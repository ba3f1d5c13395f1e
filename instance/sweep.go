package instance

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// killNamespaceMembers sends SIGKILL to every process, other than this one,
// that is in one of the namespaces ids (checking the kinds given, e.g. "mnt"
// and "net"), until a scan of /proc finds none. It catches processes that
// entered an instance without joining its cgroup (e.g. through nsenter or
// `ip netns exec`). It returns how many processes it signalled.
func killNamespaceMembers(ctx context.Context, ids map[nsID]bool, kinds []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	self := os.Getpid()
	total := 0
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		pids, err := namespaceMembers(ids, kinds, self)
		if err != nil || len(pids) == 0 {
			return total, err
		}
		for _, pid := range pids {
			if err := unix.Kill(pid, unix.SIGKILL); err == nil {
				total++
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return total, fmt.Errorf("processes %v still alive in the instance's namespaces: %w", pids, ctx.Err())
		case <-t.C:
		}
	}
}

// namespaceMembers lists the live processes in the namespaces ids. Exited
// processes (zombies) have no namespaces and are not listed.
func namespaceMembers(ids map[nsID]bool, kinds []string, self int) ([]int, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("scan /proc: %w", err)
	}
	var out []int
	var st unix.Stat_t
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil || pid == self {
			continue
		}
		for _, k := range kinds {
			if unix.Stat("/proc/"+n+"/ns/"+k, &st) == nil && ids[nsID{uint64(st.Dev), st.Ino}] {
				out = append(out, pid)
				break
			}
		}
	}
	return out, nil
}
