package metrics

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const setID = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachineScaleSets/web"

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, v := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const meminfo = "MemTotal:        8000000 kB\nMemFree:         1000000 kB\nMemAvailable:    6000000 kB\n"

func TestKernelV2(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"/cg/vmss/i0/cpu.stat":                      "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n",
		"/cg/vmss/i0/memory.current":                "300000000\n",
		"/cg/vmss/i0/memory.max":                    "1000000000\n",
		"/cg/vmss/i0/memory.stat":                   "anon 200000000\ninactive_file 100000000\n",
		"/cg/vmss/i1/cpu.stat":                      "usage_usec 1\n",
		"/cg/vmss/i1/memory.current":                "5\n",
		"/cg/vmss/i1/memory.max":                    "max\n",
		"/sys/class/net/vmssv0/statistics/rx_bytes": "111\n",
		"/sys/class/net/vmssv0/statistics/tx_bytes": "222\n",
		"/proc/meminfo":                             meminfo,
	})
	k := Kernel{Root: root}
	c, err := k.Read(Target{Instance: "0", CPUDir: "/cg/vmss/i0", MemoryDir: "/cg/vmss/i0", HostIface: "vmssv0"})
	if err != nil {
		t.Fatal(err)
	}
	// working set 300 MB - 100 MB inactive file = 200 MB of a 1 GB limit
	want := Counters{CPU: 1500 * time.Millisecond, HasCPU: true, RxBytes: 222, TxBytes: 111, HasNet: true, MemAvailable: 800000000, MemTotal: 1000000000}
	if c != want {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	// no limit: the host's MemAvailable; no interface yet: no network
	c, err = k.Read(Target{Instance: "1", CPUDir: "/cg/vmss/i1", MemoryDir: "/cg/vmss/i1", HostIface: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	if c.MemAvailable != 6000000*1024 || c.MemTotal != 8000000*1024 || c.HasNet {
		t.Fatalf("unlimited: %+v", c)
	}
}

func TestKernelV1(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"/cpuacct/vmss/i0/cpuacct.usage":        "2500000000\n",
		"/memory/vmss/i0/memory.usage_in_bytes": "600\n",
		"/memory/vmss/i0/memory.limit_in_bytes": "1000\n",
		"/memory/vmss/i0/memory.stat":           "cache 300\ntotal_inactive_file 100\n",
		"/memory/vmss/i1/memory.usage_in_bytes": "600\n",
		"/memory/vmss/i1/memory.limit_in_bytes": "9223372036854771712\n",
		"/proc/meminfo":                         meminfo,
	})
	k := Kernel{Root: root}
	c, err := k.Read(Target{CPUDir: "/cpuacct/vmss/i0", MemoryDir: "/memory/vmss/i0"})
	if err != nil {
		t.Fatal(err)
	}
	if c.CPU != 2500*time.Millisecond || !c.HasCPU || c.MemAvailable != 500 || c.MemTotal != 1000 {
		t.Fatalf("%+v", c)
	}
	c, _ = k.Read(Target{MemoryDir: "/memory/vmss/i1"})
	if c.MemTotal != 8000000*1024 || c.HasCPU {
		t.Fatalf("unlimited v1: %+v", c)
	}
	// malformed counters are errors naming the file
	writeFiles(t, root, map[string]string{"/cpuacct/vmss/bad/cpuacct.usage": "lots\n"})
	if _, err := k.Read(Target{CPUDir: "/cpuacct/vmss/bad"}); err == nil || !strings.Contains(err.Error(), "cpuacct.usage") {
		t.Fatalf("err %v", err)
	}
}

// counters at second s with cpu busy time and bytes.
func add(st *Store, inst, size string, s int, cpu time.Duration, rx, tx uint64) {
	st.Add(Target{ResourceID: setID, Instance: inst, VMSize: size}, Counters{CPU: cpu, HasCPU: true, RxBytes: rx, TxBytes: tx, HasNet: true, MemAvailable: 100, MemTotal: 400}, t0.Add(time.Duration(s)*time.Second))
}

func TestPercentageCPUOverVCPUs(t *testing.T) {
	st := &Store{}
	// instance 0: 1 vCPU busy half the time; instance 1: 2 vCPUs, one busy all the time
	for s := 0; s <= 10; s++ {
		add(st, "0", "Standard_A1", s, time.Duration(s)*500*time.Millisecond, 0, 0)
		add(st, "1", "Standard_D2s_v3", s, time.Duration(s)*time.Second, 0, 0)
	}
	for _, tc := range []struct {
		inst []string
		agg  string
		want float64
	}{
		{[]string{"0"}, "Average", 50},
		{[]string{"1"}, "Average", 50},
		{nil, "Average", 50},
		{nil, "Count", 18}, // seconds 1..9 of two instances (second 0 is the baseline)
	} {
		pts, err := st.Series(setID, PercentageCPU, 10*time.Second, tc.agg, t0, t0.Add(11*time.Second), tc.inst...)
		if err != nil {
			t.Fatal(err)
		}
		if len(pts) != 2 || math.Abs(pts[0].Value-tc.want) > 1e-9 {
			t.Errorf("%v %s: %+v, want %v in the first grain", tc.inst, tc.agg, pts, tc.want)
		}
	}
	if VCPUs("standard_ds1_v2") != 1 || VCPUs("Standard_D2s_v3") != 2 || VCPUs("Standard_B1s") != 1 || VCPUs("Standard_Unknown") != 1 {
		t.Fatal("vCPU table")
	}
}

func TestAggregationsAcrossInstances(t *testing.T) {
	st := &Store{}
	// per second: instance a receives 100 bytes, b 300 bytes; CPU 10 % and 30 %
	for s := 0; s <= 60; s++ {
		add(st, "a", "Standard_A1", s, time.Duration(s)*100*time.Millisecond, uint64(s)*100, uint64(s)*10)
		add(st, "b", "Standard_A1", s, time.Duration(s)*300*time.Millisecond, uint64(s)*300, uint64(s)*30)
	}
	grain := time.Minute
	for agg, want := range map[string]float64{"Average": 20, "Minimum": 10, "Maximum": 30, "Count": 118} {
		pts, err := st.Series(setID, PercentageCPU, grain, agg, t0, t0.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if len(pts) != 1 || math.Abs(pts[0].Value-want) > 1e-6 {
			t.Errorf("cpu %s: %+v, want %v", agg, pts, want)
		}
	}
	// Network In Total: 59 seconds of 400 bytes in [t0, t0+1m)
	pts, _ := st.Series(setID, NetworkInTotal, grain, "Total", t0, t0.Add(time.Minute))
	if pts[0].Value != 59*400 {
		t.Errorf("network in total %v", pts[0].Value)
	}
	pts, _ = st.Series(setID, NetworkOutTotal, grain, "Total", t0, t0.Add(time.Minute))
	if pts[0].Value != 59*40 {
		t.Errorf("network out total %v", pts[0].Value)
	}
	// guest names answer the same measurements
	guest, _ := st.Series(setID, `\Processor\PercentProcessorTime`, grain, "Average", t0, t0.Add(time.Minute))
	host, _ := st.Series(setID, PercentageCPU, grain, "Average", t0, t0.Add(time.Minute))
	if guest[0] != host[0] {
		t.Errorf("guest %+v host %+v", guest, host)
	}
	used, _ := st.Series(setID, `\Memory\PercentUsedMemory`, grain, "Average", t0, t0.Add(time.Minute))
	if used[0].Value != 75 {
		t.Errorf("percent used memory %v", used[0].Value)
	}
	if _, err := st.Series(setID, "Disk Magic", grain, "Average", t0, t0.Add(time.Minute)); err == nil || !strings.Contains(err.Error(), "Percentage CPU") {
		t.Errorf("unknown metric: %v", err)
	}
}

func TestRingBuffer(t *testing.T) {
	st := &Store{Capacity: 4}
	for s := 0; s < 10; s++ {
		add(st, "0", "Standard_A1", s, time.Duration(s)*time.Second, 0, 0)
	}
	pts, _ := st.Series(setID, AvailableMemoryBytes, time.Second, "Count", t0, t0.Add(10*time.Second))
	var n, firstSecond int
	for i, p := range pts {
		n += int(p.Value)
		if p.Value > 0 && firstSecond == 0 {
			firstSecond = i
		}
	}
	if n != 4 || firstSecond != 6 {
		t.Fatalf("kept %d samples from second %d, want the last 4 (from 6)", n, firstSecond)
	}
	// Forget drops instances gone long enough, keeps live ones
	add(st, "1", "Standard_A1", 0, 0, 0, 0)
	st.Forget(map[string]map[string]bool{key(setID): {"0": true}}, t0.Add(time.Second))
	if got := st.Instances(setID); len(got) != 1 || got[0] != "0" {
		t.Fatalf("instances %v", got)
	}
}

func TestRESTShapes(t *testing.T) {
	st := &Store{}
	for s := 0; s < 120; s++ {
		add(st, "0", "Standard_A1", s, time.Duration(s)*250*time.Millisecond, 0, 0)
	}
	q := url.Values{"metricnames": {"Percentage CPU,Network In Total"}, "timespan": {"2026-03-02T10:00:00Z/2026-03-02T10:03:00Z"}, "interval": {"PT1M"}, "aggregation": {"average,count"}}
	req, err := ParseRequest(setID, q, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := st.Response(req, "westus")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(resp)
	var generic map[string]any
	json.Unmarshal(b, &generic)
	v := generic["value"].([]any)
	m0 := v[0].(map[string]any)
	if generic["interval"] != "PT1M" || generic["timespan"] != "2026-03-02T10:00:00Z/2026-03-02T10:03:00Z" || generic["namespace"] != Namespace || len(v) != 2 ||
		m0["id"] != setID+"/providers/Microsoft.Insights/metrics/Percentage CPU" || m0["unit"] != "Percent" || m0["type"] != "Microsoft.Insights/metrics" {
		t.Fatalf("shape: %s", b)
	}
	data := m0["timeseries"].([]any)[0].(map[string]any)["data"].([]any)
	if len(data) != 3 {
		t.Fatalf("data %v", data)
	}
	d0, d2 := data[0].(map[string]any), data[2].(map[string]any)
	if d0["timeStamp"] != "2026-03-02T10:00:00Z" || d0["average"] != 25.0 || d0["count"] != 59.0 {
		t.Fatalf("first point %v", d0)
	}
	if _, has := d2["average"]; has || d2["count"] != 0.0 { // a grain without samples
		t.Fatalf("empty grain %v", d2)
	}
	defs := DefinitionsFor(setID, 3*time.Hour)
	if defs.Value[0].Name.Value != PercentageCPU || defs.Value[0].PrimaryAggregationType != "Average" || defs.Value[0].MetricAvailabilities[0].Retention != "PT3H" {
		t.Fatalf("definitions %+v", defs.Value[0])
	}
}

func TestParseRequestRejects(t *testing.T) {
	for _, tc := range []struct {
		q    url.Values
		want string
	}{
		{url.Values{"metricnames": {"CPU Magic"}}, "CPU Magic"},
		{url.Values{"interval": {"1 minute"}}, "interval"},
		{url.Values{"timespan": {"yesterday"}}, "timespan"},
		{url.Values{"aggregation": {"median"}}, "median"},
		{url.Values{"timespan": {"P1D"}, "interval": {"PT1S"}}, "10000"},
	} {
		if _, err := ParseRequest(setID, tc.q, t0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v", tc.q, err)
		}
	}
	// az sends naive UTC times and encodes the timespan twice
	r, err := ParseRequest(setID, url.Values{"timespan": {"2026-03-02T09%3A00%3A00.5%2F2026-03-02T10%3A00%3A00.5"}}, t0)
	if err != nil || !r.Start.Equal(t0.Add(-time.Hour+500*time.Millisecond)) || !r.End.Equal(t0.Add(500*time.Millisecond)) {
		t.Fatalf("az's timespan: %+v %v", r, err)
	}
	r, err = ParseRequest(setID, url.Values{"timespan": {"PT10M"}, "interval": {"FULL"}}, t0)
	if err != nil || r.Interval != 10*time.Minute || !r.End.Equal(t0) || r.Names[0] != PercentageCPU {
		t.Fatalf("%+v %v", r, err)
	}
}

// The VMName dimension: $filter VMName eq '*' answers one series per
// instance, VMName eq 'web_1' only that instance's.
func TestVMNameDimension(t *testing.T) {
	st := &Store{}
	for s := 0; s < 60; s++ {
		add(st, "0", "Standard_A1", s, time.Duration(s)*100*time.Millisecond, 0, 0)
		add(st, "1", "Standard_A1", s, time.Duration(s)*300*time.Millisecond, 0, 0)
	}
	ts := "2026-03-02T10:00:00Z/2026-03-02T10:01:00Z"
	req, err := ParseRequest(setID, url.Values{"timespan": {ts}, "$filter": {"VMName eq '*'"}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := st.Response(req, "westus")
	series := resp.Value[0].Timeseries
	if len(series) != 2 {
		t.Fatalf("%d series", len(series))
	}
	for i, want := range map[int]float64{0: 10, 1: 30} {
		md := series[i].MetadataValues[0].(map[string]any)
		if md["value"] != fmt.Sprintf("web_%d", i) || math.Abs(*series[i].Data[0].Average-want) > 1e-9 {
			t.Errorf("series %d: %v %v", i, md, *series[i].Data[0].Average)
		}
	}
	req, _ = ParseRequest(setID, url.Values{"timespan": {ts}, "$filter": {"VMName eq 'web_1'"}}, t0)
	resp, _ = st.Response(req, "westus")
	if s := resp.Value[0].Timeseries; len(s) != 1 || math.Abs(*s[0].Data[0].Average-30) > 1e-9 {
		t.Fatalf("filtered: %+v", s)
	}
	if _, err := ParseRequest(setID, url.Values{"$filter": {"Region eq 'x'"}}, t0); err == nil || !strings.Contains(err.Error(), "VMName") {
		t.Fatalf("unknown dimension: %v", err)
	}
}
