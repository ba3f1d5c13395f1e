package api

import "encoding/json"

// The tests inside the package (operations, timeouts) build bodies as the
// external tests do; the external package's helpers are not visible here.

const rg = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default/providers"

func scaleSetBody(capacity int) string {
	return `{"sku":{"name":"Standard_A1","capacity":` + itoa(capacity) + `},"properties":{"overprovision":"false","virtualMachineProfile":{
	  "osProfile":{"computerNamePrefix":"web","adminUsername":"azureuser","adminPassword":"Secr3t!pass"},
	  "networkProfile":{"networkInterfaceConfigurations":[{"name":"nic","properties":{"primary":true,"ipConfigurations":[{"name":"ip","properties":{"subnet":{"id":"` + rg + `/Microsoft.Network/virtualNetworks/vnet/subnets/sn"}}}]}}]}}}}`
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
