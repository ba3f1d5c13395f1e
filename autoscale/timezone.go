package autoscale

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // time zones work on hosts without /usr/share/zoneinfo
)

// TimeZones maps the Windows time-zone names Azure autoscale uses to IANA
// names, for the common zones. Location also accepts IANA names directly.
var TimeZones = map[string]string{
	"UTC":                            "UTC",
	"Coordinated Universal Time":     "UTC",
	"GMT Standard Time":              "Europe/London",
	"Greenwich Standard Time":        "Atlantic/Reykjavik",
	"W. Europe Standard Time":        "Europe/Berlin",
	"Central Europe Standard Time":   "Europe/Budapest",
	"Central European Standard Time": "Europe/Warsaw",
	"Romance Standard Time":          "Europe/Paris",
	"E. Europe Standard Time":        "Europe/Chisinau",
	"GTB Standard Time":              "Europe/Bucharest",
	"FLE Standard Time":              "Europe/Kiev",
	"Russian Standard Time":          "Europe/Moscow",
	"Turkey Standard Time":           "Europe/Istanbul",
	"Israel Standard Time":           "Asia/Jerusalem",
	"South Africa Standard Time":     "Africa/Johannesburg",
	"Arabian Standard Time":          "Asia/Dubai",
	"India Standard Time":            "Asia/Kolkata",
	"SE Asia Standard Time":          "Asia/Bangkok",
	"China Standard Time":            "Asia/Shanghai",
	"Singapore Standard Time":        "Asia/Singapore",
	"Taipei Standard Time":           "Asia/Taipei",
	"Tokyo Standard Time":            "Asia/Tokyo",
	"Korea Standard Time":            "Asia/Seoul",
	"AUS Eastern Standard Time":      "Australia/Sydney",
	"E. Australia Standard Time":     "Australia/Brisbane",
	"W. Australia Standard Time":     "Australia/Perth",
	"New Zealand Standard Time":      "Pacific/Auckland",
	"Hawaiian Standard Time":         "Pacific/Honolulu",
	"Alaskan Standard Time":          "America/Anchorage",
	"Pacific Standard Time":          "America/Los_Angeles",
	"Mountain Standard Time":         "America/Denver",
	"US Mountain Standard Time":      "America/Phoenix",
	"Central Standard Time":          "America/Chicago",
	"Eastern Standard Time":          "America/New_York",
	"Atlantic Standard Time":         "America/Halifax",
	"Canada Central Standard Time":   "America/Regina",
	"SA Pacific Standard Time":       "America/Bogota",
	"E. South America Standard Time": "America/Sao_Paulo",
	"Argentina Standard Time":        "America/Argentina/Buenos_Aires",
	"Central Standard Time (Mexico)": "America/Mexico_City",
	"Pacific SA Standard Time":       "America/Santiago",
}

// Location answers the time zone named by an autoscale schedule: a Windows
// name from TimeZones (case-insensitive) or an IANA name. Empty means UTC.
func Location(name string) (*time.Location, error) {
	if strings.TrimSpace(name) == "" {
		return time.UTC, nil
	}
	for win, iana := range TimeZones {
		if strings.EqualFold(win, name) {
			return time.LoadLocation(iana)
		}
	}
	if strings.Contains(name, "/") {
		if loc, err := time.LoadLocation(name); err == nil {
			return loc, nil
		}
	}
	return nil, fmt.Errorf("time zone %q is not known here: use a Windows time-zone name such as \"Pacific Standard Time\", \"W. Europe Standard Time\", \"UTC\" (autoscale.TimeZones lists them) or an IANA name such as \"Europe/Paris\"", name)
}
