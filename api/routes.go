package api

// The API's routes, one line each. To serve a new path or verb, add a line
// here and a handler (a func(*request)) next to its neighbours; the router
// takes care of ARM's case-insensitive spelling, of 404 and 405 answers in
// ARM's error shape, and of the request body.
//
// Patterns are Go ServeMux patterns. Write the fixed segments in ARM's
// canonical spelling (resourceGroups, Microsoft.Compute, powerOff): a request
// spelled in any case is rewritten to that spelling before matching.
func (s *Server) routes() *router {
	const (
		sub     = "/subscriptions/{sub}"
		rg      = sub + "/resourceGroups/{rg}"
		stored  = rg + "/providers/{ns}/{type}/{name}" // types stored without being acted on
		compute = rg + "/providers/Microsoft.Compute"
		set     = compute + "/virtualMachineScaleSets/{name}"
		inst    = set + "/virtualMachines/{instance}"
		vm      = compute + "/virtualMachines/{name}"
		network = rg + "/providers/Microsoft.Network"
		vnet    = network + "/virtualNetworks/{name}"
		lb      = network + "/loadBalancers/{name}"
		deploy  = rg + "/providers/Microsoft.Resources/deployments/{name}"
	)
	r := newRouter()

	// Above subscriptions: what az and the SDKs ask after signing in (tenant.go).
	r.handle("GET /subscriptions", s.listSubscriptions)
	r.handle("GET /tenants", s.listTenants)
	r.handle("GET /providers", s.listProviders)
	r.handle("GET /providers/{ns}", s.getProvider)

	// Subscription, providers, long-running operations.
	r.handle("GET "+sub, s.getSubscription)
	r.handle("GET "+sub+"/providers", s.listProviders)
	r.handle("GET "+sub+"/providers/{ns}", s.getProvider)
	r.handle("GET "+sub+"/locations", s.listLocations)
	const images = sub + "/providers/Microsoft.Compute/locations/{loc}/publishers"
	const offers = images + "/{pub}/artifacttypes/{artifact}/offers"
	r.handle("GET "+images, s.listImagePublishers)
	r.handle("GET "+offers, s.listImageOffers)
	r.handle("GET "+offers+"/{offer}/skus", s.listImageSKUs)
	r.handle("GET "+offers+"/{offer}/skus/{sku}/versions", s.listImageVersions)
	r.handle("GET "+offers+"/{offer}/skus/{sku}/versions/{version}", s.getImageVersion)
	r.handle("GET "+sub+"/providers/{ns}/{type}", s.listType)
	r.handle("GET "+sub+"/providers/{ns}/locations/{loc}/operations/{op}", s.opStatus)
	r.handle("GET "+sub+"/providers/{ns}/locations/{loc}/operationResults/{op}", s.opStatus)
	r.handle("GET "+sub+"/providers/Microsoft.Insights/eventtypes/management/values", s.listActivity)

	// Resource groups.
	r.handle("GET "+sub+"/resourceGroups", s.listGroups)
	r.handle("GET "+rg, s.getGroup)
	r.handle("HEAD "+rg, s.groupExists)
	r.handle("PUT "+rg, s.putGroup)
	r.handle("DELETE "+rg, s.deleteGroup)
	r.handle("GET "+rg+"/resources", s.listGroupResources)
	r.handle("GET "+rg+"/providers/{ns}/{type}", s.listType)

	// Scale sets and their instances.
	r.handle("GET "+set, s.getScaleSet)
	r.handle("PUT "+set, s.putScaleSet)
	r.handle("PATCH "+set, s.putScaleSet)
	r.handle("DELETE "+set, s.deleteResource)
	r.handle("GET "+set+"/instanceView", s.scaleSetInstanceView)
	r.handle("GET "+set+"/rollingUpgrades/latest", s.rollingUpgradeLatest)
	r.handle("GET "+set+"/virtualMachines", s.listInstances)
	r.handle("POST "+set+"/injectFault", s.injectFault) // emulator only
	r.handle("GET "+set+"/providers/Microsoft.Insights/metrics", s.getMetrics)
	r.handle("GET "+set+"/providers/Microsoft.Insights/metricDefinitions", s.getMetricDefinitions)
	for _, a := range setActions {
		r.handle("POST "+set+"/"+a.name, s.setAction(a.do))
		r.handle("POST "+inst+"/"+a.name, s.instanceAction(a.do))
	}
	r.handle("POST "+set+"/{action}", s.noSetAction)
	r.handle("GET "+inst, s.getInstance)
	r.handle("GET "+inst+"/instanceView", s.getInstanceView)
	r.handle("PUT "+inst, s.protectInstance)
	r.handle("PATCH "+inst, s.protectInstance)
	r.handle("DELETE "+inst, s.deleteInstance)
	r.handle("POST "+inst+"/runCommand", s.instanceRunCommand)
	r.handle("POST "+inst+"/{action}", s.noSetAction)
	r.handle("GET "+set+"/extensions/{ext}", s.getExtension)
	r.handle("PUT "+set+"/extensions/{ext}", s.putExtension)
	r.handle("DELETE "+set+"/extensions/{ext}", s.deleteExtension)

	// Scale-set instances' network interfaces and their own public IPs
	// (publicIPAddressConfiguration).
	const instNIC = inst + "/networkInterfaces/{nic}"
	r.handle("GET "+set+"/publicIPAddresses", s.listScaleSetPublicIPs)
	r.handle("GET "+set+"/networkInterfaces", s.listScaleSetNICs)
	r.handle("GET "+inst+"/networkInterfaces", s.listScaleSetNICs)
	r.handle("GET "+instNIC, s.getScaleSetNIC)
	r.handle("GET "+instNIC+"/ipConfigurations/{ipconf}/publicIPAddresses", s.listInstancePublicIPs)
	r.handle("GET "+instNIC+"/ipConfigurations/{ipconf}/publicIPAddresses/{pip}", s.getInstancePublicIP)

	// Standalone virtual machines.
	r.handle("GET "+vm, s.getVM)
	r.handle("GET "+vm+"/instanceView", s.getVMInstanceView)
	r.handle("PUT "+vm, s.putVM)
	r.handle("PATCH "+vm, s.putVM)
	r.handle("DELETE "+vm, s.deleteResource)
	r.handle("POST "+vm+"/runCommand", s.vmRunCommand)
	r.handle("POST "+vm+"/{action}", s.vmAction)

	// Networking: virtual networks and subnets, public IPs, load balancers, NICs.
	for _, t := range networkTypes {
		path := network + "/" + t.name + "/{name}"
		r.handle("GET "+path, s.getNetwork(t))
		r.handle("PUT "+path, s.putNetwork(t))
		r.handle("PATCH "+path, s.patchNetwork(t))
		r.handle("DELETE "+path, s.deleteResource)
	}
	r.handle("GET "+vnet+"/subnets/{subnet}", s.getSubnet)
	r.handle("PUT "+vnet+"/subnets/{subnet}", s.putSubnet)
	r.handle("DELETE "+vnet+"/subnets/{subnet}", s.deleteSubnet)
	for _, c := range lbChildren {
		r.handle("GET "+lb+"/"+c.name+"/{child}", s.getLBChild(c))
		r.handle("GET "+lb+"/"+c.name, s.listLBChildren(c))
	}
	r.handle("GET "+lb+"/health", s.lbHealth) // emulator only
	r.handle("POST "+lb+"/backendAddressPools/{child}/queryInboundNatRulePortMapping", s.queryNATRulePortMapping)
	r.handle("POST "+network+"/networkInterfaces/{name}/effectiveNetworkSecurityGroups", s.effectiveNSGs)

	// Template deployments.
	r.handle("GET "+rg+"/providers/Microsoft.Resources/deployments", s.listDeployments)
	r.handle("GET "+deploy, s.getDeployment)
	r.handle("PUT "+deploy, s.putDeployment)
	r.handle("DELETE "+deploy, s.deleteResource)
	r.handle("POST "+deploy+"/whatIf", s.whatIf)
	r.handle("POST "+deploy+"/validate", s.validateDeployment)
	r.handle("GET "+deploy+"/operations", s.deploymentOperations)

	// Resources stored without being acted on (genericTypes).
	r.handle("GET "+stored, s.getGeneric)
	r.handle("PUT "+stored, s.putGeneric)
	r.handle("DELETE "+stored, s.deleteGeneric)
	r.handle("POST "+rg+"/providers/Microsoft.Storage/storageAccounts/{name}/listKeys", s.listKeys)
	for typ := range genericTypes {
		r.types[typ] = true
	}
	return r
}
