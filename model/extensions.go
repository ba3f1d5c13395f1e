package model

import (
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
		if names[strings.ToLower(e.Name)] {
			return arm.Errorf(400, "DuplicateResourceName", e.Name, "Two extensions are named %s.", e.Name)
		}
		names[strings.ToLower(e.Name)] = true
		if e.Properties.Publisher == "" || e.Properties.Type == "" {
			return arm.BadRequest(base+"["+itoa(i)+"].properties", "Extension %s needs properties.publisher and properties.type.", e.Name)
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
