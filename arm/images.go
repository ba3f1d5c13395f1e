package arm

import "strings"

// Image is a marketplace image the emulator lists. Instances run the host's
// kernel and userland whatever the image; the catalog exists so that clients
// that resolve an image (az's --image aliases, `az vm image list`) find it.
type Image struct {
	Alias, Publisher, Offer, SKU, Version string
	HyperVGeneration                      string // V1 or V2
}

// Images are the Linux images of az's image aliases, each with one version.
var Images = []Image{
	{"CentOS85Gen2", "OpenLogic", "CentOS", "8_5-gen2", "8.5.2022101401", "V2"},
	{"Debian11", "Debian", "debian-11", "11-backports-gen2", "0.20230124.1270", "V2"},
	{"FlatcarLinuxFreeGen2", "kinvolk", "flatcar-container-linux-free", "stable-gen2", "3374.2.3", "V2"},
	{"OpenSuseLeap154Gen2", "SUSE", "opensuse-leap-15-4", "gen2", "2023.01.19", "V2"},
	{"RHELRaw8LVMGen2", "RedHat", "RHEL", "8-lvm-gen2", "8.7.2023011316", "V2"},
	{"SuseSles15SP3", "SUSE", "sles-15-sp3", "gen2", "2022.12.07", "V2"},
	{"Ubuntu2204", "Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2", "22.04.202301140", "V2"},
	{"UbuntuLTS", "Canonical", "UbuntuServer", "18.04-LTS", "18.04.202301100", "V1"},
}

// FindImages returns the images matching the non-empty arguments
// (case-insensitively).
func FindImages(publisher, offer, sku, version string) []Image {
	var out []Image
	for _, im := range Images {
		if (publisher == "" || strings.EqualFold(publisher, im.Publisher)) &&
			(offer == "" || strings.EqualFold(offer, im.Offer)) &&
			(sku == "" || strings.EqualFold(sku, im.SKU)) &&
			(version == "" || strings.EqualFold(version, "latest") || strings.EqualFold(version, im.Version)) {
			out = append(out, im)
		}
	}
	return out
}
