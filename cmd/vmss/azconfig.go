package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vmss-emulator/vmss/gateway"
	"github.com/vmss-emulator/vmss/identity"
)

func azConfigCmd() *cobra.Command {
	var stateDir, runtimeDir string
	var undo bool
	var profile string
	c := &cobra.Command{
		Use:   "az-config",
		Short: "Print the shell lines that point the az CLI at the emulator: eval \"$(sudo vmss az-config)\"",
		Long: `Print shell lines that set the az CLI up for the emulator's HTTPS API: trust its CA
(REQUESTS_CA_BUNDLE, a bundle of the system's roots and the emulator's CA), register
it as the cloud 'vmss' (az cloud register), make that cloud current, and sign in as
the service principal the emulator created. Read them, then apply them with

    eval "$(sudo vmss az-config)"

'vmss az-config --undo' prints the lines that return az to Azure (az logout,
az cloud set -n AzureCloud, unset REQUESTS_CA_BUNDLE). The daemon must be running
with the HTTPS API on (the default).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if undo {
				printAzUndo(cmd.OutOrStdout())
				return nil
			}
			if err := needRoot(); err != nil {
				return err
			}
			ep, err := gateway.ReadEndpoint(gateway.PublicDir(runtimeDir))
			if err != nil {
				return err
			}
			cr, err := identity.ReadCredentials(gateway.IdentityDir(stateDir))
			if err != nil {
				return err
			}
			printAzConfig(cmd.OutOrStdout(), ep, cr, profile)
			return nil
		},
	}
	c.Flags().StringVar(&stateDir, "state-dir", "/var/lib/vmss", "the daemon's state directory (holds the service principal)")
	c.Flags().StringVar(&runtimeDir, "runtime-dir", "/run/vmss", "the daemon's runtime directory (holds the endpoint and CA files)")
	c.Flags().StringVar(&profile, "profile", "2020-09-01-hybrid", "az API profile of the cloud (Azure Stack Hub's profile works with Debian's azure-cli; 'latest' needs az from Microsoft's packages)")
	c.Flags().BoolVar(&undo, "undo", false, "print the lines that return az to Azure instead")
	return c
}

// shq quotes s for a POSIX shell.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// printAzConfig prints the setup lines. The secret goes as --password=SECRET:
// az's argument parser takes a separate value starting with '-' for an option.
func printAzConfig(w io.Writer, ep gateway.Endpoint, cr identity.Credentials, profile string) {
	reg := fmt.Sprintf("--endpoint-resource-manager %s --endpoint-vm-image-alias-doc %s --profile %s", shq(ep.ResourceManager), shq(ep.VMImageAliasDoc), shq(profile))
	fmt.Fprintf(w, `# az CLI -> vmss emulator at %s (Azure Stack-style cloud %q, AD FS authority %s)
# Undo: eval "$(vmss az-config --undo)"
# Azure SDKs: endpoint %s, authority host %s (tenant "adfs"), audience %s,
#   client id %s, tenant %s, trust %s (Go: SSL_CERT_FILE or a cert pool)
export REQUESTS_CA_BUNDLE=%s
az cloud register -n %s %s --only-show-errors >/dev/null 2>&1 || az cloud update -n %s %s --only-show-errors >/dev/null
az cloud set -n %s --only-show-errors
az login --service-principal -u %s --password=%s --tenant %s --only-show-errors -o none
`,
		ep.ResourceManager, ep.Cloud, ep.Authority,
		ep.ResourceManager, strings.TrimSuffix(ep.Authority, "adfs"), ep.Audience, cr.ClientID, cr.TenantID, ep.CABundle,
		shq(ep.CABundle),
		ep.Cloud, reg, ep.Cloud, reg,
		ep.Cloud,
		shq(cr.ClientID), shq(cr.ClientSecret), shq(cr.TenantID))
}

func printAzUndo(w io.Writer) {
	fmt.Fprintf(w, `az logout --only-show-errors 2>/dev/null
az cloud set -n AzureCloud --only-show-errors
unset REQUESTS_CA_BUNDLE
`)
}
