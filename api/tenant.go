package api

import (
	"strings"

	"github.com/vmss-emulator/vmss/arm"
)

// TenantID is the tenant of the emulator's subscription.
const TenantID = "00000000-0000-0000-0000-000000000000"

func (s *Server) subscriptionBody() map[string]any {
	cfg := s.config()
	return map[string]any{
		"id":                   "/subscriptions/" + cfg.Subscription,
		"subscriptionId":       cfg.Subscription,
		"displayName":          "vmss emulator",
		"state":                "Enabled",
		"tenantId":             TenantID,
		"authorizationSource":  "RoleBased",
		"managedByTenants":     []any{},
		"subscriptionPolicies": map[string]any{"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"},
	}
}

// listSubscriptions serves GET /subscriptions: the one subscription the
// emulator serves (az login lists it).
func (s *Server) listSubscriptions(req *request) {
	writeJSON(req.w, 200, map[string]any{"value": []any{s.subscriptionBody()}})
}

// listTenants serves GET /tenants.
func (s *Server) listTenants(req *request) {
	writeJSON(req.w, 200, map[string]any{"value": []any{map[string]any{
		"id":             "/tenants/" + TenantID,
		"tenantId":       TenantID,
		"tenantCategory": "Home",
		"displayName":    "vmss emulator",
		"defaultDomain":  "vmss.local",
		"domains":        []string{"vmss.local"},
		"tenantType":     "AAD",
	}}})
}

// listLocations serves GET /subscriptions/{sub}/locations: the emulator's
// one location (it accepts resources in any, and runs them all here).
func (s *Server) listLocations(req *request) {
	cfg := s.config()
	writeJSON(req.w, 200, map[string]any{"value": []any{map[string]any{
		"id":                  "/subscriptions/" + cfg.Subscription + "/locations/" + cfg.Location,
		"name":                cfg.Location,
		"displayName":         cfg.Location,
		"regionalDisplayName": cfg.Location + " (vmss emulator)",
		"type":                "Region",
		"metadata":            map[string]any{"regionType": "Physical", "regionCategory": "Recommended"},
	}}})
}

// provider renders a resource provider with the types the emulator serves
// and the api-versions it accepts for them.
func (s *Server) provider(ns string) map[string]any {
	cfg := s.config()
	var types []any
	for _, t := range arm.ResourceTypes(ns) {
		types = append(types, map[string]any{
			"resourceType": t,
			"locations":    []string{cfg.Location},
			"apiVersions":  arm.APIVersions(ns, t),
			"capabilities": "None",
		})
	}
	return map[string]any{
		"id":                 "/subscriptions/" + cfg.Subscription + "/providers/" + ns,
		"namespace":          ns,
		"registrationState":  "Registered",
		"registrationPolicy": "RegistrationRequired",
		"resourceTypes":      types,
	}
}

// listProviders serves GET /subscriptions/{sub}/providers and /providers.
func (s *Server) listProviders(req *request) {
	var out []any
	for _, ns := range arm.Namespaces() {
		out = append(out, s.provider(ns))
	}
	writeJSON(req.w, 200, map[string]any{"value": out})
}

// getProvider serves GET .../providers/{ns}.
func (s *Server) getProvider(req *request) {
	want := req.r.PathValue("ns")
	ns, ok := arm.CanonicalNamespace(want)
	if !ok {
		writeErr(req.w, arm.Errorf(404, "InvalidResourceNamespace", want,
			"The resource namespace '%s' is invalid or not served by this emulator. Served: %s.", want, strings.Join(arm.Namespaces(), ", ")))
		return
	}
	writeJSON(req.w, 200, s.provider(ns))
}
