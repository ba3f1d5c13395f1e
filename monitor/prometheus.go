package monitor

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmss-emulator/vmss/metrics"
)

// collector exports the latest measurements of every instance and the
// autoscale counters as Prometheus metrics.
type collector struct{ m *Monitor }

var (
	descCPU = prometheus.NewDesc("vmss_instance_cpu_percent", "Percentage CPU of an instance over the last sampling interval (of its VM size's vCPUs).",
		[]string{"scale_set", "instance"}, nil)
	descMem = prometheus.NewDesc("vmss_instance_available_memory_bytes", "Available Memory Bytes of an instance at the last sample.",
		[]string{"scale_set", "instance"}, nil)
	descRx = prometheus.NewDesc("vmss_instance_network_in_bytes_total", "Bytes an instance received (its veth's counter).",
		[]string{"scale_set", "instance"}, nil)
	descTx = prometheus.NewDesc("vmss_instance_network_out_bytes_total", "Bytes an instance sent (its veth's counter).",
		[]string{"scale_set", "instance"}, nil)
	descDiskR = prometheus.NewDesc("vmss_instance_disk_read_bytes_total", "Bytes an instance's processes read from disk (its io or blkio cgroup's counter).",
		[]string{"scale_set", "instance"}, nil)
	descDiskW = prometheus.NewDesc("vmss_instance_disk_write_bytes_total", "Bytes an instance's processes wrote to disk (its io or blkio cgroup's counter).",
		[]string{"scale_set", "instance"}, nil)
	descEval = prometheus.NewDesc("vmss_autoscale_evaluations_total", "Autoscale evaluations by outcome (None, ScaleOut, ScaleIn, Failed).",
		[]string{"outcome"}, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCPU, descMem, descRx, descTx, descDiskR, descDiskW, descEval} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.m.store.Latest(func(rid, inst string, s metrics.Sample, cs metrics.Counters) {
		if cs.HasCPU {
			ch <- prometheus.MustNewConstMetric(descCPU, prometheus.GaugeValue, s.CPU, rid, inst)
		}
		if s.MemTotal > 0 {
			ch <- prometheus.MustNewConstMetric(descMem, prometheus.GaugeValue, s.MemAvailable, rid, inst)
		}
		if cs.HasNet {
			ch <- prometheus.MustNewConstMetric(descRx, prometheus.CounterValue, float64(cs.RxBytes), rid, inst)
			ch <- prometheus.MustNewConstMetric(descTx, prometheus.CounterValue, float64(cs.TxBytes), rid, inst)
		}
		if cs.HasDisk {
			ch <- prometheus.MustNewConstMetric(descDiskR, prometheus.CounterValue, float64(cs.ReadBytes), rid, inst)
			ch <- prometheus.MustNewConstMetric(descDiskW, prometheus.CounterValue, float64(cs.WriteBytes), rid, inst)
		}
	})
	c.m.mu.Lock()
	counts := make(map[string]float64, len(c.m.outcomes))
	for k, v := range c.m.outcomes {
		counts[k] = v
	}
	c.m.mu.Unlock()
	for k, v := range counts {
		ch <- prometheus.MustNewConstMetric(descEval, prometheus.CounterValue, v, k)
	}
}
