package metrics

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Target is one instance to measure.
type Target struct {
	ResourceID string // the scale set's (or VM's) resource id
	Instance   string // instance id within the set ("3")
	VMSize     string // for the vCPU count
	// CPUDir is the instance's cgroup directory with cpu.stat (v2) or
	// cpuacct.usage (v1); empty when there is none.
	CPUDir string
	// MemoryDir is the instance's cgroup directory with memory.current (v2)
	// or memory.usage_in_bytes (v1); empty when there is none.
	MemoryDir string
	// HostIface is the host-side peer of the instance's eth0; empty when the
	// instance has no network yet.
	HostIface string
	// IODir is the instance's cgroup directory with io.stat (v2) or
	// blkio.throttle.io_service_bytes and blkio.throttle.io_serviced (v1);
	// empty when there is none.
	IODir string
}

// Counters are an instance's cumulative kernel counters at one moment.
type Counters struct {
	CPU          time.Duration // CPU time used since the cgroup was made
	HasCPU       bool
	RxBytes      uint64 // bytes the instance received
	TxBytes      uint64 // bytes the instance sent
	HasNet       bool
	MemAvailable uint64
	MemTotal     uint64 // 0 when unknown
	// Disk I/O of the instance's processes, summed over block devices.
	ReadBytes, WriteBytes uint64
	ReadOps, WriteOps     uint64
	HasDisk               bool
}

// Reader reads an instance's counters from the kernel.
type Reader interface {
	Read(t Target) (Counters, error)
}

// Kernel reads counters from cgroup files, /sys/class/net and
// /proc/meminfo. Root prefixes every path (empty means /); tests point it at
// a directory of fake files.
type Kernel struct {
	Root string
	// Net answers the byte counters of a host-side interface (received and
	// transmitted by that interface), ok false when it does not exist; nil
	// reads /sys/class/net (the interfaces of the caller's network
	// namespace).
	Net func(iface string) (rx, tx uint64, ok bool)
	// HostAvailable and HostTotal, when HostTotal is not zero, stand for
	// /proc/meminfo's MemAvailable and MemTotal (read once per sampling
	// round by the caller rather than once per instance).
	HostAvailable, HostTotal uint64
}

func (k Kernel) path(p string) string {
	if k.Root == "" {
		return p
	}
	return filepath.Join(k.Root, p)
}

// Read answers t's counters. A missing cgroup or interface leaves that part
// unset (HasCPU, HasNet false); only unreadable or malformed files are errors.
func (k Kernel) Read(t Target) (Counters, error) {
	var c Counters
	var errs []error
	if t.CPUDir != "" {
		d, ok, err := k.cpu(t.CPUDir)
		c.CPU, c.HasCPU = d, ok
		errs = append(errs, err)
	}
	if t.HostIface != "" && k.Net != nil {
		// the host-side peer transmits what the instance receives
		if rx, tx, ok := k.Net(t.HostIface); ok {
			c.RxBytes, c.TxBytes, c.HasNet = tx, rx, true
		}
	} else if t.HostIface != "" {
		dir := k.path(filepath.Join("/sys/class/net", t.HostIface, "statistics"))
		// the host-side peer transmits what the instance receives
		rx, err1 := readUint(filepath.Join(dir, "tx_bytes"))
		tx, err2 := readUint(filepath.Join(dir, "rx_bytes"))
		switch {
		case errors.Is(err1, os.ErrNotExist) || errors.Is(err2, os.ErrNotExist):
		case err1 != nil || err2 != nil:
			errs = append(errs, err1, err2)
		default:
			c.RxBytes, c.TxBytes, c.HasNet = rx, tx, true
		}
	}
	if t.IODir != "" {
		io, ok, err := k.disk(t.IODir)
		if ok {
			c.ReadBytes, c.WriteBytes, c.ReadOps, c.WriteOps, c.HasDisk = io[0], io[1], io[2], io[3], true
		}
		errs = append(errs, err)
	}
	avail, total, err := k.memory(t.MemoryDir)
	c.MemAvailable, c.MemTotal = avail, total
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("measure instance %s of %s: %w", t.Instance, t.ResourceID, err)
	}
	return c, nil
}

func (k Kernel) cpu(dir string) (time.Duration, bool, error) {
	dir = k.path(dir)
	if kv, err := readKeyed(filepath.Join(dir, "cpu.stat")); err == nil {
		if v, ok := kv["usage_usec"]; ok {
			return time.Duration(v) * time.Microsecond, true, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, false, err
	}
	v, err := readUint(filepath.Join(dir, "cpuacct.usage"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return time.Duration(v), true, nil
}

// disk answers read bytes, written bytes, reads and writes of the group
// in dir, summed over devices: from io.stat (v2: "8:0 rbytes=… wbytes=…
// rios=… wios=…") or the v1 blkio throttle files ("8:0 Read N" lines;
// every I/O passes the throttle layer, limited or not). A group without
// those files answers ok false.
func (k Kernel) disk(dir string) (io [4]uint64, ok bool, err error) {
	dir = k.path(dir)
	b, err := os.ReadFile(filepath.Join(dir, "io.stat"))
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			for _, kv := range f[min(1, len(f)):] {
				name, val, _ := strings.Cut(kv, "=")
				i := slicesIndex([]string{"rbytes", "wbytes", "rios", "wios"}, name)
				if i < 0 {
					continue
				}
				v, err := strconv.ParseUint(val, 10, 64)
				if err != nil {
					return io, false, fmt.Errorf("%s: %q is not a counter", filepath.Join(dir, "io.stat"), kv)
				}
				io[i] += v
			}
		}
		return io, true, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return io, false, err
	}
	for j, file := range []string{"blkio.throttle.io_service_bytes", "blkio.throttle.io_serviced"} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if errors.Is(err, os.ErrNotExist) {
			return io, false, nil
		}
		if err != nil {
			return io, false, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) != 3 { // "Total N" and empty lines
				continue
			}
			i := slicesIndex([]string{"Read", "Write"}, f[1])
			if i < 0 {
				continue
			}
			v, err := strconv.ParseUint(f[2], 10, 64)
			if err != nil {
				return io, false, fmt.Errorf("%s: %q is not a counter", filepath.Join(dir, file), line)
			}
			io[2*j+i] += v
		}
	}
	return io, true, nil
}

func slicesIndex(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// unlimited is the smallest cgroup v1 memory limit that means "no limit".
const unlimited = 1 << 60

// memory answers available and total bytes: the cgroup's limit minus its
// working set, or the host's MemAvailable and MemTotal without a limit.
func (k Kernel) memory(dir string) (avail, total uint64, err error) {
	if dir != "" {
		d := k.path(dir)
		usage, limit, inactive, found, err := cgroupMemory(d)
		if err != nil {
			return 0, 0, err
		}
		if found && limit > 0 && limit < unlimited {
			ws := usage - min(usage, inactive)
			return limit - min(limit, ws), limit, nil
		}
	}
	if k.HostTotal > 0 {
		return k.HostAvailable, k.HostTotal, nil
	}
	return k.HostMemory()
}

// HostMemory answers the host's MemAvailable and MemTotal in bytes.
func (k Kernel) HostMemory() (avail, total uint64, err error) {
	kv, err := readKeyed(k.path("/proc/meminfo"))
	if err != nil {
		return 0, 0, err
	}
	return kv["MemAvailable:"] * 1024, kv["MemTotal:"] * 1024, nil
}

func cgroupMemory(d string) (usage, limit, inactive uint64, found bool, err error) {
	if usage, err = readUint(filepath.Join(d, "memory.current")); err == nil { // v2
		b, err := os.ReadFile(filepath.Join(d, "memory.max"))
		if err != nil {
			return 0, 0, 0, false, err
		}
		if s := strings.TrimSpace(string(b)); s != "max" {
			if limit, err = strconv.ParseUint(s, 10, 64); err != nil {
				return 0, 0, 0, false, fmt.Errorf("%s: %w", filepath.Join(d, "memory.max"), err)
			}
		}
		st, _ := readKeyed(filepath.Join(d, "memory.stat"))
		return usage, limit, st["inactive_file"], true, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, 0, 0, false, err
	}
	if usage, err = readUint(filepath.Join(d, "memory.usage_in_bytes")); err != nil { // v1
		if errors.Is(err, os.ErrNotExist) {
			return 0, 0, 0, false, nil
		}
		return 0, 0, 0, false, err
	}
	if limit, err = readUint(filepath.Join(d, "memory.limit_in_bytes")); err != nil {
		return 0, 0, 0, false, err
	}
	st, _ := readKeyed(filepath.Join(d, "memory.stat"))
	return usage, limit, st["total_inactive_file"], true, nil
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: not a counter: %w", path, err)
	}
	return v, nil
}

// readKeyed reads "key value [unit]" lines (cpu.stat, memory.stat,
// /proc/meminfo).
func readKeyed(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			out[f[0]] = v
		}
	}
	return out, nil
}
