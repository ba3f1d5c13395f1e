package gateway

import (
	"encoding/json"
	"net/http"

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

// aliases are the Linux image aliases of az's alias document. Instances run
// the host's kernel whatever the image; Windows images are not offered.
var aliases = map[string][3]string{
	"CentOS85Gen2":         {"OpenLogic", "CentOS", "8_5-gen2"},
	"Debian11":             {"Debian", "debian-11", "11-backports-gen2"},
	"FlatcarLinuxFreeGen2": {"kinvolk", "flatcar-container-linux-free", "stable-gen2"},
	"OpenSuseLeap154Gen2":  {"SUSE", "opensuse-leap-15-4", "gen2"},
	"RHELRaw8LVMGen2":      {"RedHat", "RHEL", "8-lvm-gen2"},
	"SuseSles15SP3":        {"SUSE", "sles-15-sp3", "gen2"},
	"Ubuntu2204":           {"Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2"},
	"UbuntuLTS":            {"Canonical", "UbuntuServer", "18.04-LTS"},
}

// Aliases returns publisher, offer and sku of each image alias.
func Aliases() map[string][3]string {
	out := make(map[string][3]string, len(aliases))
	for k, v := range aliases {
		out[k] = v
	}
	return out
}

func serveAliasDoc(w http.ResponseWriter, r *http.Request) {
	linux := map[string]any{}
	for name, a := range aliases {
		linux[name] = map[string]string{"publisher": a[0], "offer": a[1], "sku": a[2], "version": "latest", "architecture": "x64"}
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
