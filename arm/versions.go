package arm

import (
	"slices"
	"strings"
)

// Api-versions Azure publishes for the resource types the emulator serves,
// newest first: what GET /providers/{ns} answers and what clients may send.
var (
	computeVersions = []string{"2026-04-01", "2024-11-01", "2024-07-01", "2024-03-01", "2023-09-01", "2023-07-01", "2023-03-01", "2022-11-01", "2022-08-01", "2022-03-01",
		"2021-11-01", "2021-07-01", "2021-04-01", "2021-03-01", "2020-12-01", "2020-06-01", "2019-12-01", "2019-07-01", "2019-03-01",
		"2018-10-01", "2018-06-01", "2018-04-01", "2017-12-01", "2017-03-30", "2016-04-30-preview", "2016-03-30", "2015-06-15"}
	networkVersions = []string{"2025-05-01", "2024-10-01", "2024-07-01", "2024-05-01", "2024-03-01", "2024-01-01", "2023-11-01", "2023-09-01", "2023-06-01",
		"2023-05-01", "2023-04-01", "2023-02-01", "2022-11-01", "2022-09-01", "2022-07-01", "2022-05-01", "2022-01-01", "2021-08-01",
		"2021-05-01", "2021-03-01", "2021-02-01", "2020-11-01", "2020-08-01", "2020-07-01", "2020-06-01", "2020-05-01", "2020-04-01",
		"2020-03-01", "2019-12-01", "2019-11-01", "2019-09-01", "2019-08-01", "2019-07-01", "2019-06-01", "2019-04-01", "2019-02-01",
		"2018-12-01", "2018-11-01", "2018-10-01", "2018-08-01", "2018-07-01", "2018-06-01", "2018-04-01", "2018-02-01", "2018-01-01",
		"2017-11-01", "2017-10-01", "2017-09-01", "2017-08-01", "2017-06-01", "2017-03-01", "2016-12-01", "2016-09-01", "2016-06-01",
		"2016-03-30", "2015-06-15"}
	resourcesVersions = []string{"2025-04-01", "2025-03-01", "2024-11-01", "2024-07-01", "2024-03-01", "2023-07-01", "2022-09-01", "2021-04-01",
		"2021-01-01", "2020-10-01", "2020-08-01", "2020-06-01", "2019-10-01", "2019-08-01", "2019-07-01", "2019-05-10", "2019-05-01",
		"2019-03-01", "2018-05-01", "2018-02-01", "2017-05-10", "2016-09-01", "2016-07-01", "2016-02-01", "2015-11-01"}
	subscriptionVersions = []string{"2024-11-01", "2022-12-01", "2021-01-01", "2020-01-01", "2019-11-01", "2019-06-01", "2018-06-01", "2016-06-01", "2015-01-01"}
	storageVersions      = []string{"2024-01-01", "2023-05-01", "2023-01-01", "2022-09-01", "2022-05-01", "2021-09-01", "2021-06-01", "2021-04-01",
		"2021-02-01", "2021-01-01", "2019-06-01", "2019-04-01", "2018-11-01", "2018-07-01", "2018-02-01", "2017-10-01", "2017-06-01", "2016-12-01", "2016-01-01", "2015-06-15"}
	insightsVersions = []string{"2022-10-01", "2021-05-01-preview", "2015-04-01", "2014-04-01"}
)

// apiVersions maps namespace and resource type to the accepted versions.
var apiVersions = map[string]map[string][]string{
	"Microsoft.Compute": {
		"virtualMachineScaleSets":                 computeVersions,
		"virtualMachineScaleSets/virtualMachines": computeVersions,
		"virtualMachineScaleSets/extensions":      computeVersions,
		"virtualMachines":                         computeVersions,
		"availabilitySets":                        computeVersions,
		"locations":                               computeVersions,
		"locations/operations":                    computeVersions,
		"locations/publishers":                    computeVersions,
		"locations/vmSizes":                       computeVersions,
		"skus":                                    computeVersions,
	},
	"Microsoft.Network": {
		"virtualNetworks":       networkVersions,
		"publicIPAddresses":     networkVersions,
		"loadBalancers":         networkVersions,
		"networkInterfaces":     networkVersions,
		"networkSecurityGroups": networkVersions,
		"locations":             networkVersions,
		"locations/operations":  networkVersions,
	},
	"Microsoft.Resources": {
		"deployments":            resourcesVersions,
		"resourceGroups":         resourcesVersions,
		"subscriptions":          subscriptionVersions,
		"tenants":                subscriptionVersions,
		"providers":              resourcesVersions,
		"resources":              resourcesVersions,
		"operations":             resourcesVersions,
		"locations":              subscriptionVersions,
		"deployments/operations": resourcesVersions,
	},
	"Microsoft.Storage":  {"storageAccounts": storageVersions},
	"Microsoft.Insights": {"autoscaleSettings": insightsVersions},
}

// Namespaces lists the provider namespaces served, sorted.
func Namespaces() []string {
	var out []string
	for ns := range apiVersions {
		out = append(out, ns)
	}
	slices.Sort(out)
	return out
}

// ResourceTypes lists the resource types of namespace ns (its canonical
// spelling, as Namespaces gives it), sorted.
func ResourceTypes(ns string) []string {
	var out []string
	for t := range apiVersions[ns] {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// CanonicalNamespace returns the served namespace spelled as Azure does,
// and false for one not served.
func CanonicalNamespace(ns string) (string, bool) {
	for n := range apiVersions {
		if strings.EqualFold(n, ns) {
			return n, true
		}
	}
	return "", false
}

// APIVersions returns the api-versions Azure publishes for a resource type
// (namespace and type compared case-insensitively), newest first; nil for a
// type not served.
func APIVersions(ns, typ string) []string {
	n, ok := CanonicalNamespace(ns)
	if !ok {
		return nil
	}
	for t, v := range apiVersions[n] {
		if strings.EqualFold(t, typ) {
			return slices.Clone(v)
		}
	}
	return nil
}
