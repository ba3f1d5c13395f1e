package api

import (
	"context"
	"errors"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/dataview"
)

// Runtime is what the API needs from the running emulator: the observed status
// of instances and whether the reconciler has applied the desired state.
type Runtime interface {
	// Instance returns the observed status of an instance (scale-set instance
	// or standalone VM) by its kernel name.
	Instance(netns string) InstanceStatus
	// Pending reports whether work remains for a resource (lower-cased id),
	// and the error of its last failed attempt.
	Pending(key string) (bool, error)
	// Applied is the state sequence number the reconciler has acted on.
	Applied() int64
	// LoadBalancerHealth returns a load balancer's runtime view (rules, backends,
	// probe state, connections); nil when it has none.
	LoadBalancerHealth(key string) *dataview.LoadBalancer
	// RunCommand runs a shell script as root inside an instance (az vmss
	// run-command invoke) and returns its output and exit status.
	RunCommand(ctx context.Context, netns, script string) (stdout, stderr string, exit int, err error)
}

// InstanceStatus is the observed state of one instance.
type InstanceStatus struct {
	ProvisioningState string                   // Creating, Updating, Succeeded, Failed, Deleting
	PowerState        string                   // starting, running, stopping, stopped, deallocated, unknown
	Health            string                   // Healthy, Unhealthy, or "" when nothing reports health
	Error             string                   // last failure, "" when none
	Extensions        []arm.ExtensionView      // extension statuses
	Statuses          []arm.InstanceViewStatus // extra statuses (fault injection, ...)
}

// StaticRuntime is a Runtime that reports everything applied and running. It
// serves tests of the API alone.
type StaticRuntime struct{}

// Instance reports the instance running.
func (StaticRuntime) Instance(string) InstanceStatus {
	return InstanceStatus{ProvisioningState: "Succeeded", PowerState: "running"}
}

// Pending reports nothing pending.
func (StaticRuntime) Pending(string) (bool, error) { return false, nil }

// Applied reports everything applied.
func (StaticRuntime) Applied() int64 { return 1 << 62 }

// LoadBalancerHealth has nothing to report.
func (StaticRuntime) LoadBalancerHealth(string) *dataview.LoadBalancer { return nil }

// RunCommand has no instances to run in.
func (StaticRuntime) RunCommand(context.Context, string, string) (string, string, int, error) {
	return "", "", 0, errors.New("no instances in a static runtime")
}
