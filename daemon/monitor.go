package daemon

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/vmss-emulator/vmss/monitor"
)

// monitorAPI adapts the monitor to what the API asks (api.Monitor).
type monitorAPI struct{ m *monitor.Monitor }

func (a monitorAPI) Metrics(resourceID, region string, q url.Values) (any, error) {
	return a.m.Metrics(resourceID, region, q)
}

func (a monitorAPI) Definitions(resourceID string) any { return a.m.Definitions(resourceID) }

var filterTerm = regexp.MustCompile(`(?i)(\w+)\s+(eq|ge|le|gt|lt)\s+'([^']*)'`)

// Activity answers the activity log for an ARM $filter such as az monitor
// activity-log list sends: eventTimestamp ge/le, resourceUri eq,
// resourceGroupName eq (other terms are ignored).
func (a monitorAPI) Activity(q url.Values) (any, error) {
	var f monitor.Filter
	for _, m := range filterTerm.FindAllStringSubmatch(q.Get("$filter"), -1) {
		field, op, val := strings.ToLower(m[1]), strings.ToLower(m[2]), m[3]
		switch field {
		case "eventtimestamp":
			t, err := time.Parse(time.RFC3339Nano, val)
			if err != nil {
				return nil, fmt.Errorf("eventTimestamp %q is not an RFC 3339 time", val)
			}
			if op == "ge" || op == "gt" {
				f.Since = t
			} else {
				f.Until = t
			}
		case "resourceuri", "resourceid":
			f.ResourceID = val
		case "resourcegroupname":
			f.ResourceGroup = val
		}
	}
	return map[string]any{"value": a.m.Activity(f)}, nil
}
