package metrics

import (
	"fmt"
	"sort"
	"strings"
)

// Host metric names of Microsoft.Compute/virtualMachineScaleSets.
const (
	PercentageCPU        = "Percentage CPU"
	NetworkInTotal       = "Network In Total"
	NetworkOutTotal      = "Network Out Total"
	AvailableMemoryBytes = "Available Memory Bytes"
	DiskReadBytes        = "Disk Read Bytes"
	DiskWriteBytes       = "Disk Write Bytes"
	DiskReadOperations   = "Disk Read Operations/Sec"
	DiskWriteOperations  = "Disk Write Operations/Sec"
)

// Namespace is the metric namespace of scale-set host metrics.
const Namespace = "Microsoft.Compute/virtualMachineScaleSets"

// Definition describes one metric.
type Definition struct {
	Name        string
	DisplayName string
	Unit        string // Percent, Bytes
	Primary     string // primary aggregation type
	Description string
	value       func(Sample) (float64, bool)
}

func cpuValue(s Sample) (float64, bool)    { return s.CPU, s.hasCPU }
func idleValue(s Sample) (float64, bool)   { return max(0, 100-s.CPU), s.hasCPU }
func inValue(s Sample) (float64, bool)     { return s.NetIn, s.hasNet }
func outValue(s Sample) (float64, bool)    { return s.NetOut, s.hasNet }
func netValue(s Sample) (float64, bool)    { return s.NetIn + s.NetOut, s.hasNet }
func availValue(s Sample) (float64, bool)  { return s.MemAvailable, s.MemTotal > 0 }
func usedValue(s Sample) (float64, bool)   { return s.MemTotal - s.MemAvailable, s.MemTotal > 0 }
func diskRead(s Sample) (float64, bool)    { return s.DiskRead, s.hasDisk }
func diskWrite(s Sample) (float64, bool)   { return s.DiskWrite, s.hasDisk }
func diskReadOps(s Sample) (float64, bool) { return s.DiskReadOps, s.hasDisk }
func diskWriteOps(s Sample) (float64, bool) {
	return s.DiskWriteOps, s.hasDisk
}
func diskReadRate(s Sample) (float64, bool) {
	return s.DiskRead / s.interval(), s.hasDisk && s.interval() > 0
}
func diskWriteRate(s Sample) (float64, bool) {
	return s.DiskWrite / s.interval(), s.hasDisk && s.interval() > 0
}
func pctUsed(s Sample) (float64, bool) {
	if s.MemTotal <= 0 {
		return 0, false
	}
	return 100 * (s.MemTotal - s.MemAvailable) / s.MemTotal, true
}
func pctAvail(s Sample) (float64, bool) {
	if s.MemTotal <= 0 {
		return 0, false
	}
	return 100 * s.MemAvailable / s.MemTotal, true
}

var hostDefinitions = []Definition{
	{PercentageCPU, "Percentage CPU", "Percent", "Average", "The percentage of allocated compute units that are currently in use by the Virtual Machine(s)", cpuValue},
	{NetworkInTotal, "Network In Total", "Bytes", "Total", "The number of bytes received on all network interfaces by the Virtual Machine(s) (Incoming Traffic)", inValue},
	{NetworkOutTotal, "Network Out Total", "Bytes", "Total", "The number of bytes out on all network interfaces by the Virtual Machine(s) (Outgoing Traffic)", outValue},
	{AvailableMemoryBytes, "Available Memory Bytes", "Bytes", "Average", "Amount of physical memory, in bytes, immediately available for allocation to a process or for system use in the Virtual Machine", availValue},
	{DiskReadBytes, "Disk Read Bytes", "Bytes", "Total", "Bytes read from disk during monitoring period", diskRead},
	{DiskWriteBytes, "Disk Write Bytes", "Bytes", "Total", "Bytes written to disk during monitoring period", diskWrite},
	{DiskReadOperations, "Disk Read Operations/Sec", "CountPerSecond", "Average", "Disk Read IOPS", diskReadOps},
	{DiskWriteOperations, "Disk Write Operations/Sec", "CountPerSecond", "Average", "Disk Write IOPS", diskWriteOps},
}

// guestDefinitions are the Linux diagnostics extension's counters, answered
// from the same measurements.
var guestDefinitions = []Definition{
	{`\Processor\PercentProcessorTime`, "CPU percentage guest OS", "Percent", "Average", "Percentage of time the processors were busy", cpuValue},
	{`\Processor\PercentIdleTime`, "CPU idle time", "Percent", "Average", "Percentage of time the processors were idle", idleValue},
	{`\Memory\AvailableMemory`, "Memory available", "Bytes", "Average", "Physical memory available", availValue},
	{`\Memory\UsedMemory`, "Memory used", "Bytes", "Average", "Physical memory in use", usedValue},
	{`\Memory\PercentUsedMemory`, "Memory percentage", "Percent", "Average", "Physical memory in use, as a percentage of the total", pctUsed},
	{`\Memory\PercentAvailableMemory`, "Mem. percent available", "Percent", "Average", "Physical memory available, as a percentage of the total", pctAvail},
	{`\NetworkInterface\BytesReceived`, "Network in guest OS", "Bytes", "Total", "Bytes received", inValue},
	{`\NetworkInterface\BytesTransmitted`, "Network out guest OS", "Bytes", "Total", "Bytes sent", outValue},
	{`\NetworkInterface\BytesTotal`, "Network total", "Bytes", "Total", "Bytes received and sent", netValue},
	{`\PhysicalDisk\ReadBytesPerSecond`, "Disk read guest OS", "BytesPerSecond", "Average", "Bytes read from disk per second", diskReadRate},
	{`\PhysicalDisk\WriteBytesPerSecond`, "Disk write guest OS", "BytesPerSecond", "Average", "Bytes written to disk per second", diskWriteRate},
	{`\PhysicalDisk\ReadsPerSecond`, "Disk reads", "CountPerSecond", "Average", "Disk reads per second", diskReadOps},
	{`\PhysicalDisk\WritesPerSecond`, "Disk writes", "CountPerSecond", "Average", "Disk writes per second", diskWriteOps},
}

// Definitions answers the host metrics of a scale set, then the guest
// counters.
func Definitions() []Definition {
	return append(append([]Definition(nil), hostDefinitions...), guestDefinitions...)
}

// Lookup finds a metric by name (case-insensitive). The error lists the
// metrics that exist.
func Lookup(name string) (Definition, error) {
	for _, d := range Definitions() {
		if strings.EqualFold(d.Name, strings.TrimSpace(name)) {
			return d, nil
		}
	}
	var names []string
	for _, d := range Definitions() {
		names = append(names, d.Name)
	}
	sort.Strings(names)
	return Definition{}, fmt.Errorf("metric %q is not measured by the emulator; the metrics are: %s", name, strings.Join(names, ", "))
}
