package proxy

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// FileLimit is a RLIMIT_NOFILE pair.
type FileLimit struct{ Soft, Hard uint64 }

// RaiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit. When want
// is above the hard limit it also tries to raise the hard limit to want
// (capped by /proc/sys/fs/nr_open); that needs CAP_SYS_RESOURCE and falls
// back silently to the hard limit without it. It returns the limit in force
// afterwards. Call it once at daemon start: each flow holds two sockets
// (and a pooled pipe pair while it moves bytes).
func RaiseFileLimit(want uint64) (FileLimit, error) {
	var cur syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &cur); err != nil {
		return FileLimit{}, fmt.Errorf("proxy: read RLIMIT_NOFILE: %w", err)
	}
	if want > cur.Max {
		if nr := nrOpen(); nr > 0 && want > nr {
			want = nr
		}
		if want > cur.Max {
			raised := syscall.Rlimit{Cur: want, Max: want}
			if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
				return FileLimit{Soft: want, Hard: want}, nil
			}
		}
	}
	if cur.Cur < cur.Max {
		next := syscall.Rlimit{Cur: cur.Max, Max: cur.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err != nil {
			return FileLimit{Soft: cur.Cur, Hard: cur.Max}, fmt.Errorf("proxy: raise RLIMIT_NOFILE soft limit %d to hard limit %d: %w", cur.Cur, cur.Max, err)
		}
		cur.Cur = cur.Max
	}
	return FileLimit{Soft: cur.Cur, Hard: cur.Max}, nil
}

func nrOpen() uint64 {
	b, err := os.ReadFile("/proc/sys/fs/nr_open")
	if err != nil {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0
	}
	return n
}
