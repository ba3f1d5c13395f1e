// Package api serves the emulator's control API: a subset of the Azure Resource
// Manager REST API, on a unix socket.
//
// Paths and bodies are ARM's:
//
//	PUT|GET|PATCH|DELETE /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}?api-version=...
//	GET  .../virtualMachineScaleSets/{name}/virtualMachines
//	POST .../virtualMachineScaleSets/{name}/delete|start|powerOff|restart|reimage|deallocate|manualUpgrade  {"instanceIds": [...]}
//	GET  .../virtualMachineScaleSets/{name}/virtualMachines/{id}/instanceView
//	GET  .../virtualMachineScaleSets/{name}/rollingUpgrades/latest
//
// and the same verbs for virtual networks, public IPs, load balancers, network
// interfaces, virtual machines, resource groups and deployments. Changes are
// long-running operations: the answer carries an Azure-AsyncOperation header
// to poll until the reconciler has applied the change. Errors are ARM error
// bodies ({"error":{"code","message","target"}}) with Azure's codes.
//
// Emulator additions are few and marked as such: POST .../virtualMachineScaleSets/{name}/injectFault
// takes a fault domain down or up, and GET .../loadBalancers/{name}/health returns
// per-backend probe state.
//
// Every route is one line of routes.go (a net/http ServeMux pattern and a
// small handler); router.go makes the fixed segments of a path (keywords,
// provider namespaces, resource types, actions) case-insensitive, as in ARM,
// and answers unknown paths and methods with ARM errors.
//
// The package knows nothing of the kernel: it changes the desired state
// (package model) and asks a Runtime what is running.
package api
