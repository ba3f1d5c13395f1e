package lb

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one engine's Prometheus series, labelled lb=<Options.Name>.
type metrics struct {
	reg      prometheus.Registerer
	conns    *prometheus.CounterVec   // rule, backend
	active   *prometheus.GaugeVec     // rule, backend
	bytes    *prometheus.CounterVec   // rule, backend, direction (in: client→backend, out)
	failed   *prometheus.CounterVec   // rule, backend: dial failures
	refused  *prometheus.CounterVec   // rule: clients refused, no backend available
	probeUp  *prometheus.GaugeVec     // probe, pool, backend: 1 up, 0 down or unknown
	probeDur *prometheus.HistogramVec // probe, result
	all      []prometheus.Collector
}

func newMetrics(lbName string, reg prometheus.Registerer) (*metrics, error) {
	cl := prometheus.Labels{"lb": lbName}
	m := &metrics{
		reg: reg,
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vmss_lb_connections_total", ConstLabels: cl,
			Help: "Flows forwarded by a load-balancing rule to a backend."}, []string{"rule", "backend"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vmss_lb_connections_active", ConstLabels: cl,
			Help: "Established flows per rule and backend."}, []string{"rule", "backend"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vmss_lb_bytes_total", ConstLabels: cl,
			Help: "Bytes forwarded; direction in is client to backend."}, []string{"rule", "backend", "direction"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vmss_lb_failed_connects_total", ConstLabels: cl,
			Help: "Dials to a backend that failed (the next backend is tried)."}, []string{"rule", "backend"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vmss_lb_refused_total", ConstLabels: cl,
			Help: "Clients reset because no backend could take them."}, []string{"rule"}),
		probeUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vmss_lb_probe_up", ConstLabels: cl,
			Help: "1 when the probe marks the backend up, else 0."}, []string{"probe", "pool", "backend"}),
		probeDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vmss_lb_probe_duration_seconds", ConstLabels: cl,
			Help:    "Duration of health probes.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"probe", "result"}),
	}
	m.all = []prometheus.Collector{m.conns, m.active, m.bytes, m.failed, m.refused, m.probeUp, m.probeDur}
	if reg == nil {
		return m, nil
	}
	for i, c := range m.all {
		if err := reg.Register(c); err != nil {
			for _, done := range m.all[:i] {
				reg.Unregister(done)
			}
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("lb: metrics for load balancer " + lbName + " are already registered; close the other engine of that name first")
			}
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.all {
		m.reg.Unregister(c)
	}
}

// forgetProbes drops a removed backend's probe series.
func (m *metrics) forgetProbes(pool, backend string) {
	m.probeUp.DeletePartialMatch(prometheus.Labels{"pool": pool, "backend": backend})
}

// forgetRuleBackend drops a backend's series for one rule.
func (m *metrics) forgetRuleBackend(rule, backend string) {
	l := prometheus.Labels{"rule": rule, "backend": backend}
	m.conns.DeletePartialMatch(l)
	m.active.DeletePartialMatch(l)
	m.bytes.DeletePartialMatch(l)
	m.failed.DeletePartialMatch(l)
}

// forgetRule drops a removed rule's series.
func (m *metrics) forgetRule(rule string) {
	l := prometheus.Labels{"rule": rule}
	m.conns.DeletePartialMatch(l)
	m.active.DeletePartialMatch(l)
	m.bytes.DeletePartialMatch(l)
	m.failed.DeletePartialMatch(l)
	m.refused.DeletePartialMatch(l)
}
