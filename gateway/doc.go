// Package gateway serves the ARM API over HTTPS on a loopback address so that
// the real az CLI and the Azure SDKs can drive the emulator. It presents the
// emulator as an Azure Stack Hub–style cloud: /metadata/endpoints names the
// ARM endpoint, the audience and an AD FS authority (package identity) served
// on the same listener, with a certificate from the emulator's own CA
// (package tlsca). Every ARM request must carry a valid bearer token; the
// handler behind it is the same one the root-only unix socket serves.
package gateway
