// Package metrics measures emulated instances from the kernel and answers
// Azure Monitor's host metrics for a scale set.
//
// Measurements, per instance, each sample:
//   - Percentage CPU: the instance cgroup's CPU time over the sampling
//     interval (cgroup v2 cpu.stat usage_usec, v1 cpuacct.usage), divided by
//     the interval and by the vCPU count of the VM size (VCPUs; a table of
//     common sizes, 1 for unknown sizes), × 100.
//   - Network In Total / Network Out Total: bytes the instance received / sent
//     in the interval, read from its host-side veth peer, whose transmit
//     counter is the instance's receive and the other way round.
//   - Available Memory Bytes: the cgroup's memory limit minus its working set
//     (usage without inactive file cache); the host's MemAvailable when the
//     cgroup has no limit.
//
// Guest counters of the Linux diagnostics extension (\Processor\PercentProcessorTime,
// \Memory\AvailableMemory, \Memory\PercentUsedMemory, ...) are answered from
// the same measurements; Lookup lists them.
//
// A Store keeps a ring buffer of samples per instance with wall-clock
// timestamps. Series and Query aggregate every sample of every instance of a
// scale set that falls in a time grain with Average, Minimum, Maximum, Total
// or Count, as Azure Monitor does for a scale set's host metrics; Response
// and Definitions answer the REST shapes of
// GET {resourceId}/providers/Microsoft.Insights/metrics and
// …/metricDefinitions (api-version 2018-01-01).
//
// The kernel is behind Reader; Kernel reads /sys and /proc (under a root
// directory, for tests).
package metrics
