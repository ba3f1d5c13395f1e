// Package autoscale is the rule engine of Microsoft.Insights/autoscaleSettings,
// as Azure Monitor documents it. It is pure: it reads a setting, the current
// capacity of its target, the time and a MetricSource, and answers a Decision
// (the profile in force, every rule's metric value, the rule that decided, the
// new capacity and why). Acting on the decision (changing a scale set's
// capacity) and recording it belong to the caller.
//
// Typical usage:
//
//	s, err := autoscale.Parse(body)            // the setting's ARM body
//	e := autoscale.Engine{TimeScale: 0.02}     // every duration × 0.02
//	d, err := e.Evaluate(ctx, s, autoscale.State{Capacity: 3, LastAction: t}, time.Now(), src)
//	if d.Changed() { scale to d.New }
//
// Semantics (each has a test):
//   - Profiles: a fixed-date profile in force wins, then the recurrence profile
//     whose latest start is the most recent (a recurrence profile lasts until
//     another one starts), then the default profile (neither fixedDate nor
//     recurrence). Time zones are Azure's Windows names (mapped to IANA for the
//     common ones, see TimeZones) or IANA names.
//   - A capacity outside [minimum, maximum] is brought inside at once.
//   - A rule's metric: the metric source answers one value per time grain (the
//     rule's statistic across the instances), and the values within the time
//     window are combined with the time aggregation.
//   - Scale out when ANY scale-out rule fires; when several fire, the one giving
//     the largest capacity wins. Scale in only when ALL scale-in rules fire; the
//     one giving the largest capacity (the smallest decrease) wins.
//   - Cooldown: a rule does not act until its cooldown has passed since the
//     last scale action of the setting.
//   - Flapping: before scaling in from N to M, each scale-out rule's metric is
//     estimated after the change as value × N / M; if a scale-out rule would
//     then fire, a smaller scale-in is tried, and the scale-in is skipped when
//     none is safe.
//   - No metric data: a rule without data does not fire; when no rule has data
//     and the capacity is below the profile's default, the capacity goes to the
//     default.
//   - ChangeCount adds or removes value; PercentChangeCount changes by value
//     percent of the current capacity, rounded up to a whole instance (at least
//     one); ExactCount sets the capacity to value. Results are clamped to
//     [minimum, maximum].
//   - enabled=false: nothing is evaluated or changed.
//   - predictiveAutoscalePolicy with a scaleMode other than Disabled is refused
//     by Parse (predictive autoscale needs days of history the emulator does not
//     have).
//
// Time compression: Engine.TimeScale multiplies every duration of a rule (time
// grain, time window, cooldown); the evaluation interval belongs to the caller,
// which should scale it the same way. Wall-clock times (recurrence, fixed
// dates) are not scaled.
package autoscale
