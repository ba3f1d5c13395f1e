package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/internal/mountinfo"
)

func mounts(t *testing.T, text string) []mountinfo.Mount {
	t.Helper()
	ms, err := mountinfo.Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

const (
	hybrid = `1 0 254:0 / / rw - ext4 /dev/vda rw
31 1 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw
32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
37 31 0:34 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
`
	pureV2 = `1 0 254:0 / / rw - ext4 /dev/vda rw
31 1 0:28 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw,nsdelegate
`
	pidsOnly = `1 0 254:0 / / rw - ext4 /dev/vda rw
39 1 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
40 1 0:37 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
`
	covered = `1 0 254:0 / / rw - ext4 /dev/vda rw
31 1 0:28 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
50 31 0:40 / /sys/fs/cgroup rw - tmpfs tmpfs rw
`
)

func TestDetect(t *testing.T) {
	tests := []struct {
		name    string
		info    string
		want    Hierarchy
		wantErr bool
	}{
		{"hybrid prefers v1 freezer", hybrid, Hierarchy{Dir: "/sys/fs/cgroup/freezer", Version: V1, Controller: "freezer"}, false},
		{"pure v2", pureV2, Hierarchy{Dir: "/sys/fs/cgroup", Version: V2}, false},
		{"v1 pids only", pidsOnly, Hierarchy{Dir: "/sys/fs/cgroup/pids", Version: V1, Controller: "pids"}, false},
		{"cgroup2 covered by tmpfs", covered, Hierarchy{}, true},
		{"nothing", "1 0 254:0 / / rw - ext4 /dev/vda rw\n", Hierarchy{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := detect(mounts(t, tc.info))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestAt(t *testing.T) {
	tests := []struct {
		dir     string
		want    Hierarchy
		wantErr bool
	}{
		{"/sys/fs/cgroup/unified", Hierarchy{Dir: "/sys/fs/cgroup/unified", Version: V2}, false},
		{"/sys/fs/cgroup/unified/delegated/", Hierarchy{Dir: "/sys/fs/cgroup/unified/delegated", Version: V2}, false},
		{"/sys/fs/cgroup/freezer/x", Hierarchy{Dir: "/sys/fs/cgroup/freezer/x", Version: V1, Controller: "freezer"}, false},
		{"/sys/fs/cgroup/cpu", Hierarchy{Dir: "/sys/fs/cgroup/cpu", Version: V1}, false},
		{"/sys/fs/cgroup", Hierarchy{}, true},
		{"/sys/fs/cgroup/unifiedX", Hierarchy{}, true},
	}
	ms := mounts(t, hybrid)
	for _, tc := range tests {
		got, err := at(tc.dir, ms)
		if (err != nil) != tc.wantErr || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("at(%q) = %+v, %v; want %+v, err %v", tc.dir, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestAll(t *testing.T) {
	var dirs []string
	for _, h := range all(mounts(t, hybrid)) {
		dirs = append(dirs, h.Dir)
	}
	want := []string{"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/freezer", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified"}
	if !reflect.DeepEqual(dirs, want) {
		t.Errorf("all = %v, want %v", dirs, want)
	}
}

// fakeKernel emulates the control files of a cgroup tree in a temporary
// directory: writes to cgroup.kill kill the subtree, cgroup.freeze updates
// cgroup.events, and SIGKILL removes a pid from its cgroup.procs.
type fakeKernel struct {
	t    *testing.T
	root string
	mu   sync.Mutex
	// at records, per killed pid, the value of the fork-stopping file at the
	// time of the signal (freezer.state, pids.max or cgroup.events).
	at     map[int]string
	watch  string // control file whose value is recorded in at
	writes []string
}

func newFake(t *testing.T, files map[string]string) *fakeKernel {
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &fakeKernel{t: t, root: root, at: map[int]string{}}
}

func (k *fakeKernel) hierarchy(v Version, controller string) Hierarchy {
	return Hierarchy{Dir: k.root, Version: v, Controller: controller, write: k.write, signal: k.signal}
}

func (k *fakeKernel) read(name string) string {
	b, err := os.ReadFile(filepath.Join(k.root, name))
	if err != nil {
		k.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func (k *fakeKernel) write(path, value string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	rel, _ := filepath.Rel(k.root, path)
	k.writes = append(k.writes, rel+"="+value)
	switch filepath.Base(path) {
	case "cgroup.kill":
		return filepath.WalkDir(filepath.Dir(path), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Name() == "cgroup.procs" {
				err = os.WriteFile(p, nil, 0o644)
			}
			return err
		})
	case "cgroup.freeze":
		return os.WriteFile(filepath.Join(filepath.Dir(path), "cgroup.events"), []byte("populated 1\nfrozen "+value+"\n"), 0o644)
	}
	return os.WriteFile(path, []byte(value+"\n"), 0o644)
}

func (k *fakeKernel) signal(pid int) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.watch != "" {
		b, _ := os.ReadFile(filepath.Join(k.root, k.watch))
		k.at[pid] = strings.TrimSpace(string(b))
	}
	return filepath.WalkDir(k.root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.Name() != "cgroup.procs" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var keep []string
		for _, f := range strings.Fields(string(b)) {
			if f != strconv.Itoa(pid) {
				keep = append(keep, f)
			}
		}
		return os.WriteFile(p, []byte(strings.Join(keep, "\n")), 0o644)
	})
}

func TestKill(t *testing.T) {
	tests := []struct {
		name       string
		version    Version
		controller string
		files      map[string]string
		watch      string
		wantAt     string   // value of watch at every signal
		wantFinal  []string // file=value pairs after Kill
		wantWrites []string // first control writes, in order
	}{
		{
			name: "v1 freezer", version: V1, controller: "freezer",
			files: map[string]string{"g/cgroup.procs": "10\n11\n", "g/sub/cgroup.procs": "12\n",
				"g/freezer.state": "THAWED\n"},
			watch: "g/freezer.state", wantAt: "FROZEN",
			wantFinal:  []string{"g/freezer.state=THAWED"},
			wantWrites: []string{"g/freezer.state=FROZEN", "g/freezer.state=THAWED"},
		},
		{
			name: "v1 pids", version: V1, controller: "pids",
			files: map[string]string{"g/cgroup.procs": "10\n11\n", "g/pids.max": "max\n"},
			watch: "g/pids.max", wantAt: "0",
			wantFinal:  []string{"g/pids.max=max"},
			wantWrites: []string{"g/pids.max=0", "g/pids.max=max"},
		},
		{
			name: "v1 without fork stopper", version: V1,
			files: map[string]string{"g/cgroup.procs": "10\n"},
		},
		{
			name: "v2 cgroup.kill", version: V2,
			files:      map[string]string{"g/cgroup.procs": "10\n11\n", "g/sub/cgroup.procs": "12\n", "g/cgroup.kill": "", "g/cgroup.freeze": "0\n"},
			wantWrites: []string{"g/cgroup.kill=1"},
		},
		{
			name: "v2 freeze without cgroup.kill", version: V2,
			files: map[string]string{"g/cgroup.procs": "10\n11\n", "g/cgroup.freeze": "0\n",
				"g/cgroup.events": "populated 1\nfrozen 0\n"},
			watch: "g/cgroup.events", wantAt: "populated 1\nfrozen 1",
			wantFinal:  []string{"g/cgroup.freeze=0"},
			wantWrites: []string{"g/cgroup.freeze=1", "g/cgroup.freeze=0"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := newFake(t, tc.files)
			k.watch = tc.watch
			h := k.hierarchy(tc.version, tc.controller)
			before, err := h.Procs("g")
			if err != nil || len(before) == 0 {
				t.Fatalf("Procs before = %v, %v", before, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := h.Kill(ctx, "g"); err != nil {
				t.Fatal(err)
			}
			if after, err := h.Procs("g"); err != nil || len(after) != 0 {
				t.Errorf("Procs after Kill = %v, %v; want none", after, err)
			}
			for pid, v := range k.at {
				if v != tc.wantAt {
					t.Errorf("pid %d signalled while %s = %q, want %q", pid, tc.watch, v, tc.wantAt)
				}
			}
			if tc.watch != "" && len(k.at) != len(before) {
				t.Errorf("signalled %d pids, want %d", len(k.at), len(before))
			}
			for _, kv := range tc.wantFinal {
				name, want, _ := strings.Cut(kv, "=")
				if got := k.read(name); got != want {
					t.Errorf("%s = %q after Kill, want %q", name, got, want)
				}
			}
			if n := len(tc.wantWrites); n > 0 && (len(k.writes) < n || !slices.Equal(k.writes[:n], tc.wantWrites)) {
				t.Errorf("control writes = %v, want prefix %v", k.writes, tc.wantWrites)
			}
		})
	}
}

// TestKillEmptyGroupWritesNothing checks that killing a group (and its
// sub-groups) without processes leaves its fork stopper alone (no freeze and thaw, no
// pids.max change, no cgroup.kill), and that a group with one does use it
// (the positive control).
func TestKillEmptyGroupWritesNothing(t *testing.T) {
	stoppers := []struct {
		name       string
		version    Version
		controller string
		files      map[string]string
	}{
		{"v1 freezer", V1, "freezer", map[string]string{"g/freezer.state": "THAWED\n"}},
		{"v1 pids", V1, "pids", map[string]string{"g/pids.max": "max\n"}},
		{"v2 cgroup.kill", V2, "", map[string]string{"g/cgroup.kill": ""}},
		{"v2 freeze", V2, "", map[string]string{"g/cgroup.freeze": "0\n", "g/cgroup.events": "populated 0\nfrozen 0\n"}},
	}
	for _, tc := range stoppers {
		for _, procs := range []string{"", "10\n"} {
			t.Run(fmt.Sprintf("%s procs=%q", tc.name, procs), func(t *testing.T) {
				files := maps.Clone(tc.files)
				files["g/cgroup.procs"] = procs
				files["g/sub/cgroup.procs"] = ""
				k := newFake(t, files)
				h := k.hierarchy(tc.version, tc.controller)
				if err := h.Kill(context.Background(), "g"); err != nil {
					t.Fatal(err)
				}
				if procs == "" && len(k.writes) > 0 {
					t.Errorf("Kill of an empty group wrote %v, want nothing", k.writes)
				}
				if procs != "" && len(k.writes) == 0 {
					t.Error("Kill of a group with a process wrote no control file")
				}
			})
		}
	}
}

func TestKillGivesUpWithContext(t *testing.T) {
	k := newFake(t, map[string]string{"g/cgroup.procs": "10\n", "g/freezer.state": "THAWED\n"})
	h := k.hierarchy(V1, "freezer")
	h.signal = func(int) error { return nil } // an unkillable process
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := h.Kill(ctx, "g")
	if err == nil || !strings.Contains(err.Error(), "still alive") {
		t.Fatalf("Kill = %v, want a 'still alive' error", err)
	}
	if got := k.read("g/freezer.state"); got != "THAWED" {
		t.Errorf("freezer.state = %q after a failed kill, want THAWED", got)
	}
}

func TestMissingGroup(t *testing.T) {
	k := newFake(t, map[string]string{"other/cgroup.procs": ""})
	h := k.hierarchy(V2, "")
	if err := h.Kill(context.Background(), "missing"); err != nil {
		t.Errorf("Kill(missing) = %v, want nil", err)
	}
	if err := h.Remove(context.Background(), "missing"); err != nil {
		t.Errorf("Remove(missing) = %v, want nil", err)
	}
	if _, err := h.Procs("missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Procs(missing) = %v, want a not-exist error", err)
	}
	if h.Exists("missing") || !h.Exists("other") {
		t.Error("Exists is wrong")
	}
	if c, err := h.Children(""); err != nil || !slices.Equal(c, []string{"other"}) {
		t.Errorf("Children = %v, %v", c, err)
	}
}

// TestSetLimitsV2 checks the files SetLimits writes on cgroup v2: the
// controllers are enabled top down in Dir and in the groups above the
// instance (only those not enabled yet, only those available), then the
// limits are written; lifting writes "max".
func TestSetLimitsV2(t *testing.T) {
	k := newFake(t, map[string]string{
		"cgroup.controllers":                 "cpuset cpu io memory pids",
		"cgroup.subtree_control":             "memory",
		"vmss/cgroup.subtree_control":        "",
		"vmss/vmss-a/memory.max":             "max",
		"vmss/vmss-a/pids.max":               "max",
		"vmss/vmss-a/memory.swap.max":        "max",
		"vmss/vmss-a/cgroup.subtree_control": "",
	})
	h := k.hierarchy(V2, "")
	if err := h.SetLimits("vmss/vmss-a", Limits{Pids: 100, Memory: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"cgroup.subtree_control=+pids +cpu +io",
		"vmss/cgroup.subtree_control=+pids +memory +cpu +io",
		"vmss/vmss-a/pids.max=100",
		"vmss/vmss-a/memory.max=1048576",
		"vmss/vmss-a/memory.swap.max=0",
	}
	if !reflect.DeepEqual(k.writes, want) {
		t.Errorf("writes = %q\nwant %q", k.writes, want)
	}
	// Enabled now (the fake stores what was written; the kernel would list
	// both): lifting the limits enables nothing more and writes max.
	for _, f := range []string{"cgroup.subtree_control", "vmss/cgroup.subtree_control"} {
		if err := os.WriteFile(filepath.Join(k.root, f), []byte("cpu io memory pids"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k.writes = nil
	if err := h.SetLimits("vmss/vmss-a", Limits{}); err != nil {
		t.Fatal(err)
	}
	want = []string{"vmss/vmss-a/pids.max=max", "vmss/vmss-a/memory.max=max"}
	if !reflect.DeepEqual(k.writes, want) {
		t.Errorf("writes = %q\nwant %q", k.writes, want)
	}
	// A hybrid host's unified hierarchy has no controllers: nothing to
	// write there, and LimitHierarchies picks the v1 ones.
	k2 := newFake(t, map[string]string{"cgroup.controllers": "", "cgroup.subtree_control": ""})
	h2 := k2.hierarchy(V2, "")
	if err := h2.SetLimits("vmss/vmss-a", Limits{Pids: 1, Memory: 1}); err != nil || len(k2.writes) != 0 {
		t.Errorf("SetLimits without controllers: %v, writes %q", err, k2.writes)
	}
	var got []string
	for _, l := range limitHierarchies(h2, mounts(t, hybrid+"34 31 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")) {
		got = append(got, l.Dir+":"+l.Controller)
	}
	if want := []string{k2.root + ":", "/sys/fs/cgroup/pids:pids", "/sys/fs/cgroup/memory:memory", "/sys/fs/cgroup/cpu:cpu"}; !reflect.DeepEqual(got, want) {
		t.Errorf("limitHierarchies = %q, want %q", got, want)
	}
}

// TestSetLimitsV1 checks the files written in the v1 pids and memory
// hierarchies.
func TestSetLimitsV1(t *testing.T) {
	k := newFake(t, map[string]string{"g/pids.max": "max", "g/memory.limit_in_bytes": "", "g/memory.memsw.limit_in_bytes": ""})
	if err := k.hierarchy(V1, "pids").SetLimits("g", Limits{Pids: 7, Memory: 9}); err != nil {
		t.Fatal(err)
	}
	if err := k.hierarchy(V1, "memory").SetLimits("g", Limits{Pids: 7, Memory: 9}); err != nil {
		t.Fatal(err)
	}
	if err := k.hierarchy(V1, "memory").SetLimits("g", Limits{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"g/pids.max=7", "g/memory.limit_in_bytes=9", "g/memory.memsw.limit_in_bytes=9",
		"g/memory.memsw.limit_in_bytes=-1", "g/memory.limit_in_bytes=-1"}
	if !reflect.DeepEqual(k.writes, want) {
		t.Errorf("writes = %q\nwant %q", k.writes, want)
	}
}

// On a v1 host a group also joins the hierarchies that only account: the
// v1 blkio hierarchy (disk I/O) and the cgroup2 one (CPU time); where v2
// has the io controller, no blkio hierarchy is added.
func TestLimitHierarchiesAccounting(t *testing.T) {
	ms := mounts(t, hybrid+"43 31 0:40 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio\n")
	var got []string
	for _, l := range limitHierarchies(Hierarchy{Dir: "/sys/fs/cgroup/freezer", Version: V1, Controller: "freezer"}, ms) {
		got = append(got, l.Dir+":"+l.Controller+":"+l.Version.String())
	}
	want := []string{"/sys/fs/cgroup/pids:pids:cgroup v1", "/sys/fs/cgroup/cpu:cpu:cgroup v1", "/sys/fs/cgroup/blkio:blkio:cgroup v1", "/sys/fs/cgroup/unified::cgroup v2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("limitHierarchies = %q, want %q", got, want)
	}
	k := newFake(t, map[string]string{"cgroup.controllers": "cpu io memory pids", "cgroup.subtree_control": ""})
	got = nil
	for _, l := range limitHierarchies(k.hierarchy(V2, ""), ms) {
		got = append(got, l.Dir+":"+l.Controller)
	}
	if want := []string{k.root + ":"}; !reflect.DeepEqual(got, want) {
		t.Errorf("v2 with io: limitHierarchies = %q, want %q", got, want)
	}
}

// A v1 blkio group gets, per device to account, a throttle rule no
// workload reaches (the kernel counts I/O only where a rule exists).
func TestSetLimitsBlkioAccounting(t *testing.T) {
	k := newFake(t, map[string]string{"g/blkio.throttle.write_bps_device": ""})
	if err := k.hierarchy(V1, "blkio").SetLimits("g", Limits{Pids: 7, AccountDevices: []string{"7:3", "254:0"}}); err != nil {
		t.Fatal(err)
	}
	want := []string{"g/blkio.throttle.write_bps_device=7:3 " + unreachableBps, "g/blkio.throttle.write_bps_device=254:0 " + unreachableBps}
	if !reflect.DeepEqual(k.writes, want) {
		t.Errorf("writes = %q\nwant %q", k.writes, want)
	}
}
