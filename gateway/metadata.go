package gateway

import (
	"encoding/json"
	"net/http"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/identity"
)

// AliasDocPath serves the VM image alias document az reads to resolve
// `--image Ubuntu2204` (its cloud setting endpoint_vm_image_alias_doc).
const AliasDocPath = "/metadata/vm-image-aliases.json"

// metadata answers GET /metadata/endpoints as Azure Stack Hub's ARM does:
// the legacy object for api-version 2015-01-01 (what `az cloud register`
// reads), the list of clouds for 2019-05-01 and later.
func (g *Gateway) metadata(w http.ResponseWriter, r *http.Request) {
	base := "https://" + g.Addr.String()
	login := base + identity.PathPrefix
	v := r.URL.Query().Get("api-version")
	if v == "" || v < "2019-05-01" {
		writeJSON(w, 200, map[string]any{
			"galleryEndpoint": base + "/",
			"graphEndpoint":   "https://graph.vmss.local/",
			"portalEndpoint":  base + "/",
			"authentication": map[string]any{
				"loginEndpoint": login,
				"audiences":     []string{Audience},
			},
		})
		return
	}
	writeJSON(w, 200, []any{map[string]any{
		"name":            CloudName,
		"portal":          base + "/",
		"resourceManager": base + "/",
		"gallery":         base + "/",
		"graph":           "https://graph.vmss.local/",
		"graphAudience":   "https://graph.vmss.local/",
		"vmImageAliasDoc": base + AliasDocPath,
		"authentication": map[string]any{
			"loginEndpoint":    login,
			"audiences":        []string{Audience},
			"tenant":           "adfs",
			"identityProvider": "ADFS",
		},
		"suffixes": map[string]any{
			"storage":     "vmss.local",
			"keyVaultDns": "vault.vmss.local",
		},
	}})
}

func serveAliasDoc(w http.ResponseWriter, r *http.Request) {
	linux := map[string]any{}
	for _, im := range arm.Images {
		linux[im.Alias] = map[string]string{"publisher": im.Publisher, "offer": im.Offer, "sku": im.SKU, "version": "latest", "architecture": "x64"}
	}
	writeJSON(w, 200, map[string]any{
		"$schema":        "http://schema.management.azure.com/schemas/2015-01-01/deploymentTemplate.json",
		"contentVersion": "1.0.0.0",
		"parameters":     map[string]any{},
		"variables":      map[string]any{},
		"resources":      []any{},
		"outputs": map[string]any{
			"aliases": map[string]any{"type": "object", "value": map[string]any{"Linux": linux, "Windows": map[string]any{}}},
		},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
