package metrics

import (
	"testing"
	"time"
)

// Disk counters from a cgroup v2 io.stat and from the v1 blkio throttle
// files (fake files as the kernel writes them), summed over devices.
func TestKernelDisk(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"/v2/g/io.stat": "7:0 rbytes=4096 wbytes=1048576 rios=1 wios=256 dbytes=0 dios=0\n" +
			"254:0 rbytes=8192 wbytes=0 rios=2 wios=0 dbytes=0 dios=0\n",
		"/v1/g/blkio.throttle.io_service_bytes": "7:0 Read 4096\n7:0 Write 1048576\n7:0 Sync 1048576\n7:0 Async 4096\n7:0 Discard 0\n7:0 Total 1052672\n" +
			"254:0 Read 8192\n254:0 Write 0\n254:0 Total 8192\nTotal 1060864\n",
		"/v1/g/blkio.throttle.io_serviced": "7:0 Read 1\n7:0 Write 256\n7:0 Sync 256\n7:0 Async 1\n7:0 Discard 0\n7:0 Total 257\n" +
			"254:0 Read 2\n254:0 Write 0\n254:0 Total 2\nTotal 259\n",
		"/v1/empty/cgroup.procs": "",
		"/bad/g/io.stat":         "7:0 rbytes=x\n",
		"/proc/meminfo":          meminfo,
	})
	k := Kernel{Root: root}
	for _, dir := range []string{"/v2/g", "/v1/g"} {
		c, err := k.Read(Target{Instance: "0", IODir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if !c.HasDisk || c.ReadBytes != 12288 || c.WriteBytes != 1048576 || c.ReadOps != 3 || c.WriteOps != 256 {
			t.Errorf("%s: got %+v", dir, c)
		}
	}
	// a group without the files has no disk data (not zero)
	if c, err := k.Read(Target{Instance: "0", IODir: "/v1/empty"}); err != nil || c.HasDisk {
		t.Errorf("no files: %+v, %v", c, err)
	}
	if _, err := k.Read(Target{Instance: "0", IODir: "/bad/g"}); err == nil {
		t.Error("a malformed io.stat was accepted")
	}
}

// Disk Write Bytes is the bytes of each interval (Total over a grain sums
// them); Disk Write Operations/Sec is the rate over each interval.
func TestDiskMetricsSeries(t *testing.T) {
	var s Store
	tg := Target{ResourceID: setID, Instance: "0"}
	for i, w := range []uint64{0, 1 << 20, 3 << 20, 3 << 20} {
		s.Add(tg, Counters{HasDisk: true, WriteBytes: w, WriteOps: w / 4096, MemTotal: 1}, t0.Add(time.Duration(i)*15*time.Second))
	}
	pts, err := s.Series(setID, DiskWriteBytes, time.Minute, "Total", t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 1 || pts[0].Value != 3<<20 || pts[0].Count != 3 {
		t.Fatalf("Disk Write Bytes: %+v", pts)
	}
	pts, _ = s.Series(setID, DiskWriteOperations, time.Minute, "Maximum", t0, t0.Add(time.Minute))
	if want := float64(512) / 15; len(pts) != 1 || pts[0].Value != want {
		t.Fatalf("Disk Write Operations/Sec: %+v, want max %v", pts, want)
	}
	pts, _ = s.Series(setID, `\PhysicalDisk\WriteBytesPerSecond`, time.Minute, "Maximum", t0, t0.Add(time.Minute))
	if want := float64(2<<20) / 15; len(pts) != 1 || pts[0].Value != want {
		t.Fatalf("guest write rate: %+v, want max %v", pts, want)
	}
	// no disk counters: no points at all rather than zeros
	var s2 Store
	for i := 0; i < 3; i++ {
		s2.Add(tg, Counters{MemTotal: 1}, t0.Add(time.Duration(i)*15*time.Second))
	}
	if pts, _ := s2.Series(setID, DiskReadBytes, time.Minute, "Total", t0, t0.Add(time.Minute)); pts[0].Count != 0 {
		t.Fatalf("samples without disk counters: %+v", pts)
	}
}

// The metric definitions list the disk metrics, as Azure's do.
func TestDefinitionsListDisk(t *testing.T) {
	have := map[string]string{}
	for _, d := range Definitions() {
		have[d.Name] = d.Unit
	}
	for name, unit := range map[string]string{DiskReadBytes: "Bytes", DiskWriteBytes: "Bytes", DiskReadOperations: "CountPerSecond", DiskWriteOperations: "CountPerSecond"} {
		if have[name] != unit {
			t.Errorf("%s: unit %q, want %q", name, have[name], unit)
		}
	}
}
