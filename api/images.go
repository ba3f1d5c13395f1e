package api

import (
	"net/http"
	"sort"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
)

// Marketplace image lookups (az vm image list, and az vm/vmss create
// resolving an alias's "latest" version):
//
//	GET .../providers/Microsoft.Compute/locations/{loc}/publishers
//	    .../publishers/{pub}/artifacttypes/vmimage/offers
//	    .../offers/{offer}/skus
//	    .../skus/{sku}/versions[?$top=&$orderby=]
//	    .../versions/{version}
//
// They answer bare JSON arrays, as Azure does.

func (s *Server) imageBase(req *request) string {
	return "/Subscriptions/" + req.sub + "/Providers/Microsoft.Compute/Locations/" + req.r.PathValue("loc")
}

func vmImageArtifact(req *request) bool {
	if !strings.EqualFold(req.r.PathValue("artifact"), "vmimage") {
		writeErr(req.w, arm.Errorf(http.StatusNotFound, "ArtifactNotFound", req.r.PathValue("artifact"),
			"Artifact type '%s' is not served; use vmimage.", req.r.PathValue("artifact")))
		return false
	}
	return true
}

func imageItem(loc, id, name string) map[string]any {
	return map[string]any{"location": loc, "name": name, "id": id}
}

// distinct lists the distinct values of f over images, sorted.
func distinct(images []arm.Image, f func(arm.Image) string) []string {
	seen := map[string]bool{}
	var out []string
	for _, im := range images {
		if v := f(im); !seen[strings.ToLower(v)] {
			seen[strings.ToLower(v)] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

func (s *Server) listImagePublishers(req *request) {
	base, loc := s.imageBase(req), req.r.PathValue("loc")
	out := []any{}
	for _, p := range distinct(arm.Images, func(im arm.Image) string { return im.Publisher }) {
		out = append(out, imageItem(loc, base+"/Publishers/"+p, p))
	}
	writeJSON(req.w, 200, out)
}

func (s *Server) listImageOffers(req *request) {
	if !vmImageArtifact(req) {
		return
	}
	pub := req.r.PathValue("pub")
	found := arm.FindImages(pub, "", "", "")
	if len(found) == 0 {
		writeErr(req.w, imageNotFound("publisher", pub))
		return
	}
	base, loc := s.imageBase(req)+"/Publishers/"+found[0].Publisher+"/ArtifactTypes/VMImage/Offers/", req.r.PathValue("loc")
	out := []any{}
	for _, o := range distinct(found, func(im arm.Image) string { return im.Offer }) {
		out = append(out, imageItem(loc, base+o, o))
	}
	writeJSON(req.w, 200, out)
}

func (s *Server) listImageSKUs(req *request) {
	if !vmImageArtifact(req) {
		return
	}
	pub, offer := req.r.PathValue("pub"), req.r.PathValue("offer")
	found := arm.FindImages(pub, offer, "", "")
	if len(found) == 0 {
		writeErr(req.w, imageNotFound("offer", pub+"/"+offer))
		return
	}
	im := found[0]
	base, loc := s.imageBase(req)+"/Publishers/"+im.Publisher+"/ArtifactTypes/VMImage/Offers/"+im.Offer+"/Skus/", req.r.PathValue("loc")
	out := []any{}
	for _, sku := range distinct(found, func(im arm.Image) string { return im.SKU }) {
		out = append(out, imageItem(loc, base+sku, sku))
	}
	writeJSON(req.w, 200, out)
}

func (s *Server) imageVersionsBase(req *request, im arm.Image) string {
	return s.imageBase(req) + "/Publishers/" + im.Publisher + "/ArtifactTypes/VMImage/Offers/" + im.Offer + "/Skus/" + im.SKU + "/Versions/"
}

func (s *Server) listImageVersions(req *request) {
	if !vmImageArtifact(req) {
		return
	}
	pub, offer, sku := req.r.PathValue("pub"), req.r.PathValue("offer"), req.r.PathValue("sku")
	found := arm.FindImages(pub, offer, sku, "")
	if len(found) == 0 {
		writeErr(req.w, imageNotFound("sku", pub+"/"+offer+"/"+sku))
		return
	}
	out := []any{}
	for _, im := range found {
		out = append(out, imageItem(req.r.PathValue("loc"), s.imageVersionsBase(req, im)+im.Version, im.Version))
	}
	writeJSON(req.w, 200, out)
}

func (s *Server) getImageVersion(req *request) {
	if !vmImageArtifact(req) {
		return
	}
	pub, offer, sku, v := req.r.PathValue("pub"), req.r.PathValue("offer"), req.r.PathValue("sku"), req.r.PathValue("version")
	found := arm.FindImages(pub, offer, sku, v)
	if len(found) == 0 {
		writeErr(req.w, imageNotFound("version", pub+"/"+offer+"/"+sku+"/"+v))
		return
	}
	im := found[0]
	writeJSON(req.w, 200, map[string]any{
		"id":       s.imageVersionsBase(req, im) + im.Version,
		"name":     im.Version,
		"location": req.r.PathValue("loc"),
		"properties": map[string]any{
			"hyperVGeneration":             im.HyperVGeneration,
			"architecture":                 "x64",
			"osDiskImage":                  map[string]any{"operatingSystem": "Linux", "sizeInBytes": 32213303808, "sizeInGb": 31},
			"dataDiskImages":               []any{},
			"automaticOSUpgradeProperties": map[string]any{"automaticOSUpgradeSupported": false},
			"disallowed":                   map[string]any{"vmDiskType": "None"},
			"features":                     []any{map[string]any{"name": "IsAcceleratedNetworkSupported", "value": "True"}},
		},
	})
}

func imageNotFound(what, name string) *arm.Error {
	return arm.Errorf(http.StatusNotFound, "NotFound", name,
		"Artifact: VMImage was not found (%s %s). The emulator lists the Linux images of az's aliases (az vm image list --all).", what, name)
}
