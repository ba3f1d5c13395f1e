package api

import (
	"fmt"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/dataview"
)

// ProbeStatuses renders what load-balancer health probes say of an instance
// as instance-view statuses: code HealthProbe/{lb}/{probe}/{up|down|unknown|draining},
// level Warning when down, the last result as the message.
func ProbeStatuses(probes []dataview.InstanceProbe) []arm.InstanceViewStatus {
	var out []arm.InstanceViewStatus
	for _, p := range probes {
		level := "Info"
		if p.State == dataview.StateDown {
			level = "Warning"
		}
		out = append(out, arm.InstanceViewStatus{
			Code:          "HealthProbe/" + p.LoadBalancer + "/" + p.Probe + "/" + strings.ToLower(p.State),
			Level:         level,
			DisplayStatus: fmt.Sprintf("Load balancer %s, probe %s: %s", p.LoadBalancer, p.Probe, p.State),
			Message:       p.LastResult,
		})
	}
	return out
}
