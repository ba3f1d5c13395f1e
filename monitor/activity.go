package monitor

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmss-emulator/vmss/autoscale"
)

// Event is an activity log entry in the shape of Azure's EventData (GET
// /subscriptions/{sub}/providers/Microsoft.Insights/eventtypes/management/values).
type Event struct {
	Caller               string            `json:"caller"`
	Category             Localizable       `json:"category"`
	CorrelationID        string            `json:"correlationId"`
	Description          string            `json:"description"`
	EventDataID          string            `json:"eventDataId"`
	EventName            Localizable       `json:"eventName"`
	EventTimestamp       time.Time         `json:"eventTimestamp"`
	ID                   string            `json:"id"`
	Level                string            `json:"level"`
	OperationID          string            `json:"operationId"`
	OperationName        Localizable       `json:"operationName"`
	ResourceGroupName    string            `json:"resourceGroupName"`
	ResourceProviderName Localizable       `json:"resourceProviderName"`
	ResourceType         Localizable       `json:"resourceType"`
	ResourceID           string            `json:"resourceId"`
	Status               Localizable       `json:"status"`
	SubStatus            Localizable       `json:"subStatus"`
	SubmissionTimestamp  time.Time         `json:"submissionTimestamp"`
	SubscriptionID       string            `json:"subscriptionId"`
	Properties           map[string]string `json:"properties"`
	// Decision is the evaluation behind the event (emulator extension).
	Decision *autoscale.Decision `json:"decision,omitempty"`
}

// Localizable is Azure's {value, localizedValue}.
type Localizable struct {
	Value          string `json:"value"`
	LocalizedValue string `json:"localizedValue"`
}

func loc(v, l string) Localizable { return Localizable{v, l} }

// Operation names of autoscale events.
const (
	OpScaleUp   = "Microsoft.Insights/AutoscaleSettings/Scaleup/Action"
	OpScaleDown = "Microsoft.Insights/AutoscaleSettings/Scaledown/Action"
	OpEvaluate  = "Microsoft.Insights/AutoscaleSettings/Evaluate/Action" // emulator: every evaluation
)

// activityLog keeps the latest events per autoscale setting.
type activityLog struct {
	mu     sync.Mutex
	max    int
	events map[string][]Event // lower-case setting id → events, oldest first
}

func (l *activityLog) add(key string, e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.events == nil {
		l.events = map[string][]Event{}
	}
	ev := append(l.events[key], e)
	if len(ev) > l.max {
		ev = append([]Event(nil), ev[len(ev)-l.max:]...)
	}
	l.events[key] = ev
}

// Filter selects activity log events. Zero fields match everything.
type Filter struct {
	ResourceID    string // the autoscale setting, or its target scale set
	ResourceGroup string
	Since, Until  time.Time
	ScaleOnly     bool // only scale actions, not every evaluation
}

func (l *activityLog) list(f Filter) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []Event{}
	for _, evs := range l.events {
		for _, e := range evs {
			if f.ResourceID != "" && !strings.EqualFold(f.ResourceID, e.ResourceID) && !strings.EqualFold(f.ResourceID, e.Properties["ResourceName"]) {
				continue
			}
			if f.ResourceGroup != "" && !strings.EqualFold(f.ResourceGroup, e.ResourceGroupName) {
				continue
			}
			if (!f.Since.IsZero() && e.EventTimestamp.Before(f.Since)) || (!f.Until.IsZero() && e.EventTimestamp.After(f.Until)) {
				continue
			}
			if f.ScaleOnly && e.OperationName.Value == OpEvaluate {
				continue
			}
			out = append(out, e)
		}
	}
	// newest first, as Azure lists them
	sortEvents(out)
	return out
}

func sortEvents(ev []Event) {
	for i := 1; i < len(ev); i++ {
		for j := i; j > 0 && ev[j].EventTimestamp.After(ev[j-1].EventTimestamp); j-- {
			ev[j], ev[j-1] = ev[j-1], ev[j]
		}
	}
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// event builds the activity log entry of a decision on setting (id, its
// resource group and subscription).
func event(settingID, group, sub string, d autoscale.Decision, status, errMsg string) Event {
	op, name := OpEvaluate, "Autoscale evaluation"
	switch {
	case d.Changed() && d.New > d.Current:
		op, name = OpScaleUp, "Autoscale scale up"
	case d.Changed():
		op, name = OpScaleDown, "Autoscale scale down"
	}
	desc := d.Reason
	if d.Changed() {
		desc = "The autoscale engine attempting to scale resource '" + d.TargetResourceURI + "' from " + strconv.Itoa(d.Current) + " instances count to " + strconv.Itoa(d.New) + " instances count: " + d.Reason
	}
	if errMsg != "" {
		desc += ". Failed: " + errMsg
	}
	id := newGUID()
	dd := d
	return Event{
		Caller:               "Microsoft.Insights/autoscaleSettings",
		Category:             loc("Autoscale", "Autoscale"),
		CorrelationID:        id,
		Description:          desc,
		EventDataID:          newGUID(),
		EventName:            loc("AutoscaleAction", "Autoscale action"),
		EventTimestamp:       d.Time.UTC(),
		ID:                   settingID + "/events/" + id,
		Level:                map[bool]string{true: "Error", false: "Informational"}[errMsg != ""],
		OperationID:          id,
		OperationName:        loc(op, name),
		ResourceGroupName:    group,
		ResourceProviderName: loc("Microsoft.Insights", "Microsoft Insights"),
		ResourceType:         loc("Microsoft.Insights/autoscaleSettings", "Microsoft.Insights/autoscaleSettings"),
		ResourceID:           settingID,
		Status:               loc(status, status),
		SubmissionTimestamp:  time.Now().UTC(),
		SubscriptionID:       sub,
		Properties: map[string]string{
			"Description":            desc,
			"ResourceName":           d.TargetResourceURI,
			"OldInstancesCount":      strconv.Itoa(d.Current),
			"NewInstancesCount":      strconv.Itoa(d.New),
			"ActiveAutoscaleProfile": d.Profile,
			"LastScaleActionTime":    d.Time.UTC().Format(time.RFC3339Nano),
		},
		Decision: &dd,
	}
}
