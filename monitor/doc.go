// Package monitor runs Azure Monitor for the emulator: it samples every
// scale-set instance's metrics from the kernel into a metrics.Store, evaluates
// the enabled Microsoft.Insights/autoscaleSettings with the autoscale engine,
// changes a scale set's capacity through the model's Scale (the path of a
// user's `az vmss scale`, so scale-in policy, draining and the load balancer
// behave as for a manual scale), and keeps an activity log of every
// evaluation and scale action.
//
// Typical usage (the daemon does this):
//
//	m := monitor.New(monitor.Options{Store: store, Sampler: &monitor.KernelSampler{...}, TimeScale: 0.02})
//	go m.Run(ctx)
//	resp, err := m.Metrics(resourceID, query)   // GET …/providers/Microsoft.Insights/metrics
//	events := m.Activity(filter)               // the activity log
//
// Pace: samples every SampleInterval (default 15 s × TimeScale, at least
// 100 ms), evaluations every EvalInterval (default 60 s × TimeScale, at least
// 200 ms); a round that takes d is followed by a pause of at least 3 d, so
// the monitor takes at most a quarter of a core however many instances there
// are (a round of 1000 idle instances takes about 60 ms). A round reads at
// most PerRound instances (default 1000): with more, each round reads the
// next 1000 in turn, so a round costs the same whatever the number of
// instances and each instance is sampled every InstanceInterval (e.g. 60 s
// for 4,096 instances at 15 s). Rates (CPU, network, disk) are then over a
// longer span, averages per grain unchanged; Count has fewer samples. The
// activity log and the cooldown clocks live in memory: a daemon restart
// starts them afresh.
package monitor
