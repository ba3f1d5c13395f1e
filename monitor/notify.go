package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vmss-emulator/vmss/autoscale"
)

// webhookPayload is the body Azure autoscale posts to a setting's webhooks.
type webhookPayload struct {
	Version    string            `json:"version"`
	Status     string            `json:"status"`
	Operation  string            `json:"operation"`
	Context    webhookContext    `json:"context"`
	Properties map[string]string `json:"properties"`
}

type webhookContext struct {
	Timestamp         string `json:"timestamp"`
	ID                string `json:"id"`
	Name              string `json:"name"`
	Details           string `json:"details"`
	SubscriptionID    string `json:"subscriptionId"`
	ResourceGroupName string `json:"resourceGroupName"`
	ResourceName      string `json:"resourceName"`
	ResourceType      string `json:"resourceType"`
	ResourceID        string `json:"resourceId"`
	ResourceRegion    string `json:"resourceRegion"`
	OldCapacity       string `json:"oldCapacity"`
	NewCapacity       string `json:"newCapacity"`
}

// loopbackURL reports whether u names a loopback host: the emulator sends
// traffic to this host only.
func loopbackURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	h := p.Hostname()
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// notify announces a scale action to the setting's Scale notifications:
// webhooks with loopback URLs are posted (in the background, 10 s timeout),
// other webhooks and e-mails are only listed in the answer (recorded on the
// activity log event).
func (m *Monitor) notify(ctx context.Context, s setting, as autoscale.Setting, d autoscale.Decision) string {
	var notes []string
	for _, n := range as.Notifications {
		if n.Operation != "" && !strings.EqualFold(n.Operation, "Scale") {
			continue
		}
		if len(n.Emails) > 0 {
			notes = append(notes, "e-mail to "+strings.Join(n.Emails, ", ")+" recorded, not sent")
		}
		for _, hook := range n.Webhooks {
			if !loopbackURL(hook) {
				notes = append(notes, "webhook "+hook+" not called: the emulator calls loopback URLs only")
				continue
			}
			notes = append(notes, "webhook "+hook+" called")
			body := m.payload(s, as, d)
			go m.post(context.WithoutCancel(ctx), hook, body)
		}
	}
	return strings.Join(notes, "; ")
}

func (m *Monitor) payload(s setting, as autoscale.Setting, d autoscale.Decision) []byte {
	op := "Scale Out"
	if d.New < d.Current {
		op = "Scale In"
	}
	target := as.TargetResourceURI
	name := target[strings.LastIndex(target, "/")+1:]
	p := webhookPayload{Version: "1.0", Status: "Activated", Operation: op, Properties: map[string]string{},
		Context: webhookContext{
			Timestamp: d.Time.UTC().Format(time.RFC3339Nano), ID: s.id.String(), Name: s.id.Name(),
			Details:        fmt.Sprintf("Autoscale successfully started scale operation for resource '%s' from capacity '%d' to capacity '%d'", name, d.Current, d.New),
			SubscriptionID: s.id.Subscription, ResourceGroupName: s.group, ResourceName: name,
			ResourceType: "microsoft.compute/virtualmachinescalesets", ResourceID: target,
			OldCapacity: strconv.Itoa(d.Current), NewCapacity: strconv.Itoa(d.New),
		}}
	b, _ := json.Marshal(p)
	return b
}

func (m *Monitor) post(ctx context.Context, hook string, body []byte) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook, bytes.NewReader(body))
	if err != nil {
		m.o.Logger.Warn("autoscale webhook", "url", hook, "err", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		m.o.Logger.Warn("autoscale webhook", "url", hook, "err", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		m.o.Logger.Warn("autoscale webhook", "url", hook, "status", resp.Status)
	}
}
