package arm

import (
	"net/url"
	"slices"
	"strings"
)

// Api-versions Azure publishes for the resource types the emulator serves,
// newest first: what GET /providers/{ns} answers and what clients may send.
var (
	computeVersions = []string{"2026-04-01", "2025-04-01", "2024-11-01", "2024-07-01", "2024-03-01", "2023-09-01", "2023-07-01", "2023-03-01", "2022-11-01", "2022-08-01", "2022-03-01",
		"2021-11-01", "2021-07-01", "2021-04-01", "2021-03-01", "2020-12-01", "2020-06-01", "2019-12-01", "2019-07-01", "2019-03-01",
		"2018-10-01", "2018-06-01", "2018-04-01", "2017-12-01", "2017-03-30", "2016-08-30", "2016-04-30-preview", "2016-03-30", "2015-06-15", "2015-05-01-preview"}
	networkVersions = []string{"2025-05-01", "2025-03-01", "2025-01-01", "2024-10-01", "2024-07-01", "2024-05-01", "2024-03-01", "2024-01-01", "2023-11-01", "2023-09-01", "2023-06-01",
		"2023-05-01", "2023-04-01", "2023-02-01", "2022-11-01", "2022-09-01", "2022-07-01", "2022-05-01", "2022-01-01", "2021-12-01", "2021-08-01",
		"2021-06-01", "2021-05-01", "2021-03-01", "2021-02-01", "2020-11-01", "2020-08-01", "2020-07-01", "2020-06-01", "2020-05-01", "2020-04-01",
		"2020-03-01", "2019-12-01", "2019-11-01", "2019-09-01", "2019-08-01", "2019-07-01", "2019-06-01", "2019-04-01", "2019-02-01",
		"2018-12-01", "2018-11-01", "2018-10-01", "2018-08-01", "2018-07-01", "2018-06-01", "2018-05-01", "2018-04-01", "2018-03-01", "2018-02-01", "2018-01-01",
		"2017-11-01", "2017-10-01", "2017-09-01", "2017-08-01", "2017-06-01", "2017-04-01", "2017-03-01", "2016-12-01", "2016-11-01", "2016-10-01",
		"2016-09-01", "2016-08-01", "2016-07-01", "2016-06-01", "2016-03-30", "2015-06-15", "2015-05-01-preview", "2014-12-01-preview"}
	// ARM itself answers Microsoft.Resources (groups, deployments,
	// subscriptions, tenants, providers, locations) and accepts the same
	// versions for all of them: the list its InvalidApiVersionParameter
	// error gives, and the newer ones.
	resourcesVersions = []string{"2025-04-01", "2025-03-01", "2024-11-01", "2024-08-01", "2024-07-01", "2024-06-01-preview", "2024-03-01", "2023-07-01",
		"2023-07-01-preview", "2023-03-01-preview", "2022-12-01", "2022-11-01-preview", "2022-09-01", "2022-06-01", "2022-05-01", "2022-03-01-preview",
		"2022-01-01", "2021-04-01", "2021-01-01", "2020-10-01", "2020-09-01", "2020-08-01", "2020-07-01", "2020-06-01", "2020-05-01", "2020-01-01",
		"2019-11-01", "2019-10-01", "2019-09-01", "2019-08-01", "2019-07-01", "2019-06-01", "2019-05-10", "2019-05-01", "2019-03-01", "2018-11-01",
		"2018-09-01", "2018-08-01", "2018-07-01", "2018-06-01", "2018-05-01", "2018-02-01", "2018-01-01", "2017-12-01", "2017-08-01", "2017-06-01",
		"2017-05-10", "2017-05-01", "2017-03-01", "2016-09-01", "2016-07-01", "2016-06-01", "2016-02-01", "2015-11-01", "2015-01-01",
		"2014-04-01-preview", "2014-04-01", "2014-01-01", "2013-03-01", "2014-02-26", "2014-04"}
	storageVersions = []string{"2025-01-01", "2024-01-01", "2023-05-01", "2023-04-01", "2023-01-01", "2022-09-01", "2022-05-01", "2021-09-01", "2021-08-01", "2021-06-01", "2021-04-01",
		"2021-02-01", "2021-01-01", "2020-08-01-preview", "2019-06-01", "2019-04-01", "2018-11-01", "2018-07-01", "2018-03-01-preview", "2018-02-01", "2017-10-01", "2017-06-01",
		"2016-12-01", "2016-05-01", "2016-01-01", "2015-06-15", "2015-05-01-preview"}
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
		// served by the network provider under Microsoft.Compute paths
		"virtualMachineScaleSets/networkInterfaces":                 networkVersions,
		"virtualMachineScaleSets/publicIPAddresses":                 networkVersions,
		"virtualMachineScaleSets/virtualMachines/networkInterfaces": networkVersions,
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
		"subscriptions":          resourcesVersions,
		"tenants":                resourcesVersions,
		"providers":              resourcesVersions,
		"resources":              resourcesVersions,
		"operations":             resourcesVersions,
		"locations":              resourcesVersions,
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

// versionTarget names the namespace and resource type whose api-versions
// apply to a request path: the resource type after the last "providers"
// (the longest chain of its types the table knows, so an action or a child
// without versions of its own falls back to its parent), and
// Microsoft.Resources for the paths above providers (subscriptions, tenants,
// resource groups, locations, provider registrations). ok is false for a
// path no table entry covers; the router answers it.
func versionTarget(path string) (ns, typ string, ok bool) {
	if u, err := url.Parse(path); err == nil {
		path = u.Path
	}
	segs := strings.FieldsFunc(path, func(c rune) bool { return c == '/' })
	last := -1
	for i, s := range segs {
		if strings.EqualFold(s, "providers") {
			last = i
		}
	}
	lower := make([]string, len(segs))
	for i, s := range segs {
		lower[i] = strings.ToLower(s)
	}
	switch {
	case len(segs) == 0:
		return "", "", false
	case last >= 0 && last+2 >= len(segs):
		// /providers, /providers/{ns}, /subscriptions/{s}/providers[/{ns}]
		return "Microsoft.Resources", "providers", true
	case last < 0 && lower[0] == "tenants" && len(segs) == 1:
		return "Microsoft.Resources", "tenants", true
	case last < 0 && lower[0] == "subscriptions":
		switch {
		case len(segs) <= 2:
			return "Microsoft.Resources", "subscriptions", true
		case lower[2] == "locations" && len(segs) == 3:
			return "Microsoft.Resources", "locations", true
		case lower[2] == "resourcegroups" && len(segs) <= 4:
			return "Microsoft.Resources", "resourceGroups", true
		case lower[2] == "resourcegroups" && len(segs) == 5 && lower[4] == "resources":
			return "Microsoft.Resources", "resources", true
		}
		return "", "", false
	case last < 0:
		return "", "", false
	}
	n, found := CanonicalNamespace(segs[last+1])
	if !found {
		return "", "", false
	}
	var types []string
	for i := last + 2; i < len(segs); i += 2 {
		types = append(types, segs[i])
	}
	for k := len(types); k > 0; k-- {
		want := strings.Join(types[:k], "/")
		for t := range apiVersions[n] {
			if strings.EqualFold(t, want) {
				return n, t, true
			}
		}
	}
	return "", "", false
}

// CheckAPIVersion answers the error ARM gives when a request's api-version
// is not one Azure publishes for what the path addresses (nil when it is, or
// when the path addresses nothing the emulator has versions for):
// InvalidApiVersionParameter for Microsoft.Resources (groups, deployments,
// subscriptions, providers), NoRegisteredProviderFound for a resource
// provider's types, both 400 and listing the supported versions. location
// is named in the latter, as ARM does.
func CheckAPIVersion(path, version, location string) *Error {
	ns, typ, ok := versionTarget(path)
	if !ok {
		return nil
	}
	versions := apiVersions[ns][typ]
	for _, v := range versions {
		if strings.EqualFold(v, version) {
			return nil
		}
	}
	if ns == "Microsoft.Resources" {
		return Errorf(400, "InvalidApiVersionParameter", "api-version", "The api-version '%s' is invalid. The supported versions are '%s'.", version, strings.Join(versions, ","))
	}
	asc := slices.Clone(versions)
	slices.Sort(asc)
	return Errorf(400, "NoRegisteredProviderFound", "api-version",
		"No registered resource provider found for location '%s' and API version '%s' for type '%s'. The supported api-versions are '%s'. The supported locations are '%s'.",
		location, version, typ, strings.Join(asc, ", "), location)
}

// VersionFor is the api-version a client of the emulator sends for path:
// preferred when Azure publishes it for what the path addresses (or the path
// is not versioned here), else the newest version that is.
func VersionFor(path, preferred string) string {
	ns, typ, ok := versionTarget(path)
	if !ok {
		return preferred
	}
	versions := apiVersions[ns][typ]
	if slices.Contains(versions, preferred) || len(versions) == 0 {
		return preferred
	}
	return versions[0]
}
