package deploy

import (
	"fmt"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
)

// kind is how the engine deploys a resource type.
type kind int

const (
	kindUnknown kind = iota // not emulated: an error, or skipped with a warning
	kindPut                 // PUT through the API and follow its operation
	kindNoop                // accepted without effect, with a warning (virtual machine extensions)
)

// putTypes are the resource types the API serves by PUT (lower case).
var putTypes = map[string]bool{
	"microsoft.network/virtualnetworks":                    true,
	"microsoft.network/virtualnetworks/subnets":            true,
	"microsoft.network/publicipaddresses":                  true,
	"microsoft.network/loadbalancers":                      true,
	"microsoft.network/networkinterfaces":                  true,
	"microsoft.network/networksecuritygroups":              true,
	"microsoft.compute/virtualmachines":                    true,
	"microsoft.compute/virtualmachinescalesets":            true,
	"microsoft.compute/virtualmachinescalesets/extensions": true,
	"microsoft.compute/availabilitysets":                   true,
	"microsoft.storage/storageaccounts":                    true,
	"microsoft.insights/autoscalesettings":                 true,
}

func kindOf(typ string) kind {
	t := strings.ToLower(strings.TrimSuffix(typ, "/"))
	switch {
	case putTypes[t]:
		return kindPut
	case t == strings.ToLower(arm.TypeVMExtension):
		return kindNoop
	}
	return kindUnknown
}

// supportedTypes lists the types for error messages.
func supportedTypes() string {
	return "virtualNetworks (and subnets), publicIPAddresses, loadBalancers, networkInterfaces, networkSecurityGroups, " +
		"virtualMachines (and extensions, as no-ops), virtualMachineScaleSets (and extensions), availabilitySets, storageAccounts, " +
		"Microsoft.Insights/autoscaleSettings"
}

// emulatedExtensions are the extension types the emulator runs in instances.
var emulatedExtensions = map[string]bool{
	"microsoft.azure.extensions/customscript":          true,
	"microsoft.ostcextensions/customscriptforlinux":    true,
	"microsoft.managedservices/applicationhealthlinux": true,
}

// warning is one diagnostic of a deployment or an operation.
type warning struct {
	Level   string `json:"level"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Target  string `json:"target,omitempty"`
}

func warn(code, target, format string, args ...any) warning {
	return warning{Level: "Warning", Code: code, Target: target, Message: fmt.Sprintf(format, args...)}
}

// warnings finds what a resource body asks for that the emulator accepts
// without doing: extensions it does not run, stored-only types.
func warnings(typ, id string, body map[string]any) []warning {
	t := strings.ToLower(typ)
	var out []warning
	extWarn := func(name string, props map[string]any) {
		pub, _ := props["publisher"].(string)
		et, _ := props["type"].(string)
		if !emulatedExtensions[strings.ToLower(pub+"/"+et)] {
			out = append(out, warn("ExtensionNotEmulated", id,
				"Extension %s (%s/%s) is accepted as a no-op: the emulator does not run it (it runs CustomScript and ApplicationHealthLinux).", name, pub, et))
		}
	}
	switch t {
	case "microsoft.compute/virtualmachinescalesets":
		exts, _ := dig(body, "properties", "virtualMachineProfile", "extensionProfile", "extensions").([]any)
		for _, e := range exts {
			em, _ := e.(map[string]any)
			name, _ := em["name"].(string)
			props, _ := em["properties"].(map[string]any)
			extWarn(name, props)
		}
	case "microsoft.compute/virtualmachinescalesets/extensions":
		props, _ := body["properties"].(map[string]any)
		name, _ := body["name"].(string)
		extWarn(lastSegment(name), props)
	case strings.ToLower(arm.TypeVMExtension):
		props, _ := body["properties"].(map[string]any)
		pub, _ := props["publisher"].(string)
		et, _ := props["type"].(string)
		name, _ := body["name"].(string)
		out = append(out, warn("ExtensionNotEmulated", id,
			"Virtual machine extension %s (%s/%s) is accepted as a no-op: the emulator does not run extensions on standalone VMs.", lastSegment(name), pub, et))
	}
	return out
}

func lastSegment(s string) string {
	if i := strings.LastIndex(s, "/"); i >= 0 {
		return s[i+1:]
	}
	return s
}

// dig follows keys (case-insensitively) through nested objects.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = getFold(m, k)
	}
	return v
}

// getFold reads a key case-insensitively, preferring an exact match.
func getFold(m map[string]any, k string) any {
	if v, ok := m[k]; ok {
		return v
	}
	for mk, v := range m {
		if strings.EqualFold(mk, k) {
			return v
		}
	}
	return nil
}
