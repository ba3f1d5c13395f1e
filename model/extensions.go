package model

import (
	"encoding/json"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
)

// validateExtensions checks extension names and provisionAfterExtensions
// references, and that the ordering has no cycle.
func validateExtensions(base string, exts []arm.Extension) *arm.Error {
	names := map[string]bool{}
	for i, e := range exts {
		if e.Name == "" {
			return arm.BadRequest(base+"["+itoa(i)+"].name", "Every extension needs a name.")
		}
		if err := ValidateName(TypeExtension, e.Name); err != nil {
			return err
		}
		if names[strings.ToLower(e.Name)] {
			return arm.Errorf(400, "DuplicateResourceName", e.Name, "Two extensions are named %s.", e.Name)
		}
		names[strings.ToLower(e.Name)] = true
		if e.Properties.Publisher == "" || e.Properties.Type == "" {
			return arm.BadRequest(base+"["+itoa(i)+"].properties", "Extension %s needs properties.publisher and properties.type.", e.Name)
		}
		if err := validateHealthSettings(base+"["+itoa(i)+"].properties.settings", e); err != nil {
			return err
		}
	}
	for i, e := range exts {
		for _, a := range e.Properties.ProvisionAfterExtensions {
			if !names[strings.ToLower(a)] {
				return arm.BadRequest(base+"["+itoa(i)+"].properties.provisionAfterExtensions",
					"Extension %s is to be provisioned after %s, which is not in the extension profile.", e.Name, a)
			}
		}
	}
	if _, err := ExtensionOrder(exts); err != nil {
		return err
	}
	return nil
}

// ExtensionOrder returns the extensions in an order that honours
// provisionAfterExtensions (stable otherwise). A cycle is an error naming it.
func ExtensionOrder(exts []arm.Extension) ([]arm.Extension, *arm.Error) {
	idx := map[string]int{}
	for i, e := range exts {
		idx[strings.ToLower(e.Name)] = i
	}
	state := make([]int, len(exts)) // 0 new, 1 visiting, 2 done
	var out []arm.Extension
	var stack []string
	var visit func(i int) *arm.Error
	visit = func(i int) *arm.Error {
		switch state[i] {
		case 1:
			return arm.BadRequest("extensionProfile", "provisionAfterExtensions forms a cycle: %s -> %s.", strings.Join(stack, " -> "), exts[i].Name)
		case 2:
			return nil
		}
		state[i] = 1
		stack = append(stack, exts[i].Name)
		for _, a := range exts[i].Properties.ProvisionAfterExtensions {
			if j, ok := idx[strings.ToLower(a)]; ok {
				if e := visit(j); e != nil {
					return e
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = 2
		out = append(out, exts[i])
		return nil
	}
	for i := range exts {
		if e := visit(i); e != nil {
			return nil, e
		}
	}
	return out, nil
}

// TypeExtension is the type of a scale set's extensions, for ValidateName.
const TypeExtension = "Microsoft.Compute/virtualMachineScaleSets/extensions"

// Application Health extension settings ranges (Azure's).
const (
	minHealthInterval = 5
	maxHealthInterval = 60
	maxHealthProbes   = 24
	maxHealthGrace    = 14400
)

// validateHealthSettings checks the settings of an Application Health
// extension (ApplicationHealthLinux, ApplicationHealthWindows) against
// Azure's ranges; target is the settings' path. Other extensions pass.
func validateHealthSettings(target string, e arm.Extension) *arm.Error {
	t := strings.ToLower(e.Properties.Type)
	if t != "applicationhealthlinux" && t != "applicationhealthwindows" {
		return nil
	}
	var set struct {
		Protocol          *string  `json:"protocol"`
		Port              *arm.Int `json:"port"`
		IntervalInSeconds *arm.Int `json:"intervalInSeconds"`
		NumberOfProbes    *arm.Int `json:"numberOfProbes"`
		GracePeriod       *arm.Int `json:"gracePeriod"`
	}
	if len(e.Properties.Settings) > 0 {
		if err := json.Unmarshal(e.Properties.Settings, &set); err != nil {
			return arm.BadRequest(target, "Extension %s: settings are not valid: %v.", e.Name, err)
		}
	}
	if set.Protocol != nil {
		switch strings.ToLower(*set.Protocol) {
		case "http", "https", "tcp":
		default:
			return arm.BadRequest(target+".protocol", "Extension %s: protocol must be http, https or tcp, got %q.", e.Name, *set.Protocol)
		}
	}
	check := func(name string, v *arm.Int, lo, hi int64) *arm.Error {
		if v != nil && (int64(*v) < lo || int64(*v) > hi) {
			return arm.BadRequest(target+"."+name, "Extension %s: %s must be between %d and %d, got %d.", e.Name, name, lo, hi, int64(*v))
		}
		return nil
	}
	for _, c := range []struct {
		name   string
		v      *arm.Int
		lo, hi int64
	}{
		{"port", set.Port, 1, 65535},
		{"intervalInSeconds", set.IntervalInSeconds, minHealthInterval, maxHealthInterval},
		{"numberOfProbes", set.NumberOfProbes, 1, maxHealthProbes},
		{"gracePeriod", set.GracePeriod, minHealthInterval, maxHealthGrace},
	} {
		if err := check(c.name, c.v, c.lo, c.hi); err != nil {
			return err
		}
	}
	return nil
}
