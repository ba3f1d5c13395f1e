package model

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
)

// ComputerName is Azure's computer name for a scale-set instance: the prefix
// followed by the instance id in base 36, upper case, zero-padded to 6 chars.
// Instance 85 with prefix "web" is "web00002D".
func ComputerName(prefix string, instanceID int) string {
	s := strings.ToUpper(strconv.FormatInt(int64(instanceID), 36))
	if len(s) < 6 {
		s = strings.Repeat("0", 6-len(s)) + s
	}
	return prefix + s
}

// VMName is the name of scale-set instance id: {set}_{id}.
func VMName(set string, instanceID int) string {
	return set + "_" + strconv.Itoa(instanceID)
}

var (
	rgNameRE   = regexp.MustCompile(`^[-\w._()]{1,90}$`)
	vmssNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	netNameRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$`)
	subNameRE  = netNameRE
	vmNameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	prefixRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,57}$`)
	userRE     = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
)

// reserved admin user names Azure rejects on Linux (a subset of its list).
var reservedUsers = map[string]bool{
	"root": true, "admin": true, "administrator": true, "adm": true, "bin": true, "daemon": true,
	"games": true, "guest": true, "lp": true, "mail": true, "news": true, "nobody": true,
	"sshd": true, "sys": true, "sync": true, "uucp": true, "www-data": true, "user": true,
	"test": true, "support": true, "backup": true,
}

// ValidateResourceGroupName checks a resource group name against Azure's rules.
func ValidateResourceGroupName(name string) *arm.Error {
	if !rgNameRE.MatchString(name) || strings.HasSuffix(name, ".") {
		return arm.Errorf(400, "InvalidResourceGroup", name,
			"The provided resource group name '%s' has these invalid characters or length: 1-90 characters of letters, digits, '_', '-', '.', '(' and ')', not ending in '.'.", name)
	}
	return nil
}

// ValidateName checks a resource name for a resource type against Azure's naming rules.
func ValidateName(typ, name string) *arm.Error {
	var ok bool
	var rule string
	switch strings.ToLower(typ) {
	case strings.ToLower(arm.TypeScaleSet):
		ok = vmssNameRE.MatchString(name) && !strings.HasSuffix(name, ".") && !strings.HasSuffix(name, "-")
		rule = "1-64 characters of letters, digits, '_', '.', '-'; starting with a letter or digit; not ending in '.' or '-'"
	case strings.ToLower(arm.TypeVM):
		ok = vmNameRE.MatchString(name) && !strings.HasSuffix(name, ".") && !strings.HasSuffix(name, "-")
		rule = "1-64 characters of letters, digits, '_', '.', '-'; starting with a letter or digit; not ending in '.' or '-'"
	case strings.ToLower(arm.TypeSubnet):
		ok = subNameRE.MatchString(name)
		rule = "1-80 characters of letters, digits, '_', '.', '-'; starting with a letter or digit; ending with a letter, digit or '_'"
	default:
		ok = netNameRE.MatchString(name)
		rule = "1-80 characters of letters, digits, '_', '.', '-'; starting with a letter or digit; ending with a letter, digit or '_'"
	}
	if !ok {
		return arm.Errorf(400, "InvalidResourceName", name,
			"Resource name %s is invalid for %s: use %s.", name, typ, rule)
	}
	return nil
}

// ValidateComputerNamePrefix checks a Linux scale set's computerNamePrefix.
func ValidateComputerNamePrefix(p string) *arm.Error {
	if !prefixRE.MatchString(p) {
		return arm.BadRequest("virtualMachineProfile.osProfile.computerNamePrefix",
			"Computer name prefix '%s' is invalid: use 1-58 letters, digits or '-', starting with a letter or digit.", p)
	}
	return nil
}

// ValidateAdminUser checks a Linux admin user name.
func ValidateAdminUser(target, u string) *arm.Error {
	if !userRE.MatchString(u) {
		return arm.BadRequest(target, "The admin user name '%s' is invalid: use 1-32 lower-case letters, digits, '_' or '-', starting with a letter or '_'.", u)
	}
	if reservedUsers[strings.ToLower(u)] {
		return arm.BadRequest(target, "The admin user name '%s' is not allowed: Azure reserves it. Choose another name, for example azureuser.", u)
	}
	return nil
}

// ValidatePassword checks Azure's Linux password rule: 6-72 characters with
// three of lower case, upper case, digit, special character.
func ValidatePassword(target, p string) *arm.Error {
	if len(p) < 6 || len(p) > 72 {
		return arm.BadRequest(target, "The supplied password must be between 6-72 characters long and must satisfy at least 3 of password complexity requirements.")
	}
	var lower, upper, digit, special int
	for _, r := range p {
		switch {
		case r >= 'a' && r <= 'z':
			lower = 1
		case r >= 'A' && r <= 'Z':
			upper = 1
		case r >= '0' && r <= '9':
			digit = 1
		default:
			special = 1
		}
	}
	if lower+upper+digit+special < 3 {
		return arm.BadRequest(target, "The supplied password must be between 6-72 characters long and must satisfy at least 3 of password complexity requirements from the following: lower case, upper case, a digit, a special character.")
	}
	return nil
}

// netnsName makes a kernel-safe name from parts: lower case, characters outside
// [a-z0-9._-] replaced by '-'.
func netnsName(prefix string, parts ...string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('-')
		}
		for _, r := range strings.ToLower(p) {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
				b.WriteRune(r)
			default:
				b.WriteByte('-')
			}
		}
	}
	return b.String()
}

// uniqueNetns returns base, or base with a numeric suffix, not a key of
// used.
func uniqueNetns[V any](base string, used map[string]V) string {
	if _, ok := used[base]; !ok {
		return base
	}
	for i := 2; ; i++ {
		c := fmt.Sprintf("%s-%d", base, i)
		if _, ok := used[c]; !ok {
			return c
		}
	}
}
