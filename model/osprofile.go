package model

import (
	"regexp"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/vmss-emulator/vmss/arm"
)

var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})$`)

// validateOSProfile checks credentials and names of an OS profile. base is the
// JSON path of the profile for error targets.
func validateOSProfile(base string, p *arm.OSProfile) *arm.Error {
	if p == nil {
		return arm.BadRequest(base, "Required parameter 'osProfile' is missing (null).")
	}
	if p.AdminUsername == "" {
		return arm.BadRequest(base+".adminUsername", "Required parameter 'adminUsername' is missing (null).")
	}
	if e := ValidateAdminUser(base+".adminUsername", p.AdminUsername); e != nil {
		return e
	}
	lc := p.LinuxConfiguration
	disablePw := lc != nil && arm.BoolOr(lc.DisablePasswordAuthentication, false)
	var keys []arm.SSHPublicKey
	if lc != nil && lc.SSH != nil {
		keys = lc.SSH.PublicKeys
	}
	for i, k := range keys {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k.KeyData)); err != nil {
			return arm.BadRequest(base+".linuxConfiguration.ssh.publicKeys["+itoa(i)+"].keyData",
				"The SSH public key is not valid (%v). Give a key in OpenSSH format such as the content of ~/.ssh/id_ed25519.pub.", err)
		}
		if k.Path != "" && k.Path != "/home/"+p.AdminUsername+"/.ssh/authorized_keys" {
			return arm.BadRequest(base+".linuxConfiguration.ssh.publicKeys["+itoa(i)+"].path",
				"Destination path for SSH public keys is currently limited to its default value /home/%s/.ssh/authorized_keys due to a known issue in Linux provisioning agent.", p.AdminUsername)
		}
	}
	switch {
	case disablePw && len(keys) == 0:
		return arm.BadRequest(base+".linuxConfiguration.ssh.publicKeys",
			"Password authentication is disabled and no SSH public key is given: add linuxConfiguration.ssh.publicKeys, or enable password authentication.")
	case !disablePw && p.AdminPassword == "" && len(keys) == 0:
		return arm.BadRequest(base+".adminPassword",
			"Give an admin password or an SSH public key (linuxConfiguration.ssh.publicKeys).")
	}
	// With password authentication disabled Azure ignores adminPassword
	// entirely: quickstart templates pass one adminPasswordOrKey parameter
	// (an SSH public key when authenticationType is sshPublicKey) to it.
	if p.AdminPassword != "" && !disablePw {
		if e := ValidatePassword(base+".adminPassword", p.AdminPassword); e != nil {
			return e
		}
	}
	if p.ComputerName != "" && !hostnameRE.MatchString(p.ComputerName) {
		return arm.BadRequest(base+".computerName",
			"Computer name '%s' is invalid: use 1-64 letters, digits or '-', starting with a letter or digit.", p.ComputerName)
	}
	return nil
}

// PasswordAuth reports whether a profile allows password logins.
func PasswordAuth(p *arm.OSProfile) bool {
	if p == nil || p.AdminPassword == "" {
		return false
	}
	lc := p.LinuxConfiguration
	return lc == nil || !arm.BoolOr(lc.DisablePasswordAuthentication, false)
}

// PublicKeys returns a profile's SSH public keys.
func PublicKeys(p *arm.OSProfile) []string {
	if p == nil || p.LinuxConfiguration == nil || p.LinuxConfiguration.SSH == nil {
		return nil
	}
	var out []string
	for _, k := range p.LinuxConfiguration.SSH.PublicKeys {
		out = append(out, strings.TrimSpace(k.KeyData))
	}
	return out
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}
