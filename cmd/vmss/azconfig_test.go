package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmss-emulator/vmss/gateway"
	"github.com/vmss-emulator/vmss/identity"
)

// The printed lines, run by a shell with az replaced by a function that
// records its arguments, register, select and sign in to the emulator; a
// secret starting with '-' is passed as --password=SECRET, which az's
// argument parser takes (with -p SECRET it stops: "expected one argument").
func TestAzConfigLinesRunInAShell(t *testing.T) {
	ep := gateway.Endpoint{Cloud: "vmss", ResourceManager: "https://127.0.0.1:8443/", Authority: "https://127.0.0.1:8443/adfs",
		Audience: gateway.Audience, VMImageAliasDoc: "https://127.0.0.1:8443/metadata/vm-image-aliases.json",
		CAFile: "/run/vmss/https/ca.pem", CABundle: "/run/vmss/https/ca-bundle.pem"}
	cr := identity.Credentials{TenantID: "00000000-0000-0000-0000-000000000000", ClientID: "11111111-2222-3333-4444-555555555555", ClientSecret: "-s3cr'et-$x"}
	var out bytes.Buffer
	printAzConfig(&out, ep, cr, "2020-09-01-hybrid")
	log := filepath.Join(t.TempDir(), "az.log")
	script := `az() { { printf '%s|' "$@"; echo; } >>"$AZLOG"; [ "$1 $2" != "cloud register" ]; }
` + out.String() + `
echo "CA=$REQUESTS_CA_BUNDLE" >>"$AZLOG"`
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), "AZLOG="+log)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sh: %v\n%s\nscript:\n%s", err, msg, script)
	}
	got, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	want := []string{
		"cloud|register|-n|vmss|--endpoint-resource-manager|https://127.0.0.1:8443/|--endpoint-vm-image-alias-doc|https://127.0.0.1:8443/metadata/vm-image-aliases.json|--profile|2020-09-01-hybrid|--only-show-errors|",
		// register "fails" here (cloud exists): update runs instead.
		"cloud|update|-n|vmss|--endpoint-resource-manager|https://127.0.0.1:8443/|--endpoint-vm-image-alias-doc|https://127.0.0.1:8443/metadata/vm-image-aliases.json|--profile|2020-09-01-hybrid|--only-show-errors|",
		"cloud|set|-n|vmss|--only-show-errors|",
		"login|--service-principal|-u|11111111-2222-3333-4444-555555555555|--password=-s3cr'et-$x|--tenant|00000000-0000-0000-0000-000000000000|--only-show-errors|-o|none|",
		"CA=/run/vmss/https/ca-bundle.pem",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("the lines did:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	var undo bytes.Buffer
	printAzUndo(&undo)
	if !strings.Contains(undo.String(), "az cloud set -n AzureCloud") || !strings.Contains(undo.String(), "unset REQUESTS_CA_BUNDLE") {
		t.Errorf("undo lines: %s", undo.String())
	}
}
