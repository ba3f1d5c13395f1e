// Package arm holds the Azure Resource Manager shapes vmss speaks: resource ids,
// the JSON bodies of the resource types the emulator models (virtual networks,
// public IP addresses, load balancers, network interfaces, virtual machines and
// virtual machine scale sets), and ARM error bodies.
//
// The types carry the ARM JSON names so a body accepted by Azure's REST API is
// accepted here and comes back in the same shape. Values that templates often
// write as strings ("overprovision": "true", "intervalInSeconds": "15") decode
// through Bool and Int, which accept both forms.
//
// Typical usage:
//
//	id, err := arm.ParseID("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web")
//	if err != nil { ... }
//	fmt.Println(id.ResourceGroup, id.Type(), id.Name())
//
// Non-goals: the full ARM schema. Fields the emulator does not act on but users
// send (storage profiles, diagnostics) are kept as raw JSON and returned as sent.
package arm
