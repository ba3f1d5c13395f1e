package metrics

import "strings"

// vcpus is the vCPU count of common VM sizes (Azure's published sizes). Sizes
// not listed count as one vCPU.
var vcpus = map[string]int{
	"standard_a0": 1, "standard_a1": 1, "standard_a2": 2, "standard_a3": 4, "standard_a4": 8,
	"standard_a1_v2": 1, "standard_a2_v2": 2, "standard_a4_v2": 4, "standard_a8_v2": 8,
	"standard_a2m_v2": 2, "standard_a4m_v2": 4, "standard_a8m_v2": 8,
	"basic_a0": 1, "basic_a1": 1, "basic_a2": 2, "basic_a3": 4, "basic_a4": 8,
	"standard_b1ls": 1, "standard_b1s": 1, "standard_b1ms": 1, "standard_b2s": 2, "standard_b2ms": 2,
	"standard_b4ms": 4, "standard_b8ms": 8, "standard_b12ms": 12, "standard_b16ms": 16, "standard_b20ms": 20,
	"standard_b2ats_v2": 2, "standard_b2ts_v2": 2, "standard_b2s_v2": 2, "standard_b4s_v2": 4,
	"standard_d1": 1, "standard_d2": 2, "standard_d3": 4, "standard_d4": 8,
	"standard_d1_v2": 1, "standard_d2_v2": 2, "standard_d3_v2": 4, "standard_d4_v2": 8, "standard_d5_v2": 16,
	"standard_ds1": 1, "standard_ds2": 2, "standard_ds3": 4, "standard_ds4": 8,
	"standard_ds1_v2": 1, "standard_ds2_v2": 2, "standard_ds3_v2": 4, "standard_ds4_v2": 8, "standard_ds5_v2": 16,
	"standard_d2_v3": 2, "standard_d4_v3": 4, "standard_d8_v3": 8, "standard_d16_v3": 16, "standard_d32_v3": 32,
	"standard_d2s_v3": 2, "standard_d4s_v3": 4, "standard_d8s_v3": 8, "standard_d16s_v3": 16, "standard_d32s_v3": 32,
	"standard_d2_v4": 2, "standard_d4_v4": 4, "standard_d8_v4": 8, "standard_d2s_v4": 2, "standard_d4s_v4": 4, "standard_d8s_v4": 8,
	"standard_d2_v5": 2, "standard_d4_v5": 4, "standard_d8_v5": 8, "standard_d16_v5": 16,
	"standard_d2s_v5": 2, "standard_d4s_v5": 4, "standard_d8s_v5": 8, "standard_d16s_v5": 16,
	"standard_d2as_v5": 2, "standard_d4as_v5": 4, "standard_d8as_v5": 8,
	"standard_e2s_v3": 2, "standard_e4s_v3": 4, "standard_e8s_v3": 8, "standard_e2s_v5": 2, "standard_e4s_v5": 4,
	"standard_f1": 1, "standard_f2": 2, "standard_f4": 4, "standard_f8": 8, "standard_f16": 16,
	"standard_f1s": 1, "standard_f2s": 2, "standard_f4s": 4, "standard_f8s": 8,
	"standard_f2s_v2": 2, "standard_f4s_v2": 4, "standard_f8s_v2": 8, "standard_f16s_v2": 16,
}

// VCPUs answers the vCPU count of a VM size (case-insensitive); 1 for sizes
// not in the table.
func VCPUs(size string) int {
	if n, ok := vcpus[strings.ToLower(strings.TrimSpace(size))]; ok {
		return n
	}
	return 1
}
