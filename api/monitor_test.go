package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/client"
	"github.com/vmss-emulator/vmss/model"
)

// fakeMonitor records what the API asks.
type fakeMonitor struct {
	id, region string
	q          url.Values
}

func (f *fakeMonitor) Metrics(id, region string, q url.Values) (any, error) {
	f.id, f.region, f.q = id, region, q
	if q.Get("metricnames") == "Nope" {
		return nil, errors.New(`metric "Nope" is not measured`)
	}
	return map[string]any{"value": []any{}, "resource": id}, nil
}

func (f *fakeMonitor) Definitions(id string) any {
	return map[string]any{"value": []any{}, "resource": id}
}

func (f *fakeMonitor) Activity(q url.Values) (any, error) {
	f.q = q
	return map[string]any{"value": []any{map[string]any{"filter": q.Get("$filter")}}}, nil
}

func startMonitored(t *testing.T, mon Monitor) *client.Client {
	t.Helper()
	dir := t.TempDir()
	st, err := model.Open(filepath.Join(dir, "state"), model.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ln, err := ListenUnix(filepath.Join(dir, "vmss.sock"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &Server{Store: st, Runtime: StaticRuntime{}, Monitor: mon}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return client.New(filepath.Join(dir, "vmss.sock"))
}

// monPut PUTs body and waits for the operation.
func monPut(t *testing.T, c *client.Client, path, body string) {
	t.Helper()
	op, err := c.Do(context.Background(), "PUT", path, []byte(body), nil)
	if err == nil {
		err = c.Wait(context.Background(), op, nil)
	}
	if err != nil {
		t.Fatalf("PUT %s: %v", path, err)
	}
}

func TestMetricsRoutes(t *testing.T) {
	mon := &fakeMonitor{}
	c := startMonitored(t, mon)
	monPut(t, c, rg+"/Microsoft.Network/virtualNetworks/vnet", `{"properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]},"subnets":[{"name":"sn","properties":{"addressPrefix":"10.0.0.0/24"}}]}}`)
	monPut(t, c, rg+"/Microsoft.Compute/virtualMachineScaleSets/Web", scaleSetBody(1))
	ctx := context.Background()
	var out map[string]any
	// any spelling of the path; the monitor gets the canonical id and the location
	if _, err := c.Do(ctx, "GET", strings.ToLower(rg)+"/microsoft.compute/virtualmachinescalesets/web/providers/microsoft.insights/metrics?metricnames=Percentage%20CPU&interval=PT1M", nil, &out); err != nil {
		t.Fatal(err)
	}
	if mon.id != rg+"/Microsoft.Compute/virtualMachineScaleSets/Web" || mon.region == "" || mon.q.Get("interval") != "PT1M" || mon.q.Get("metricnames") != "Percentage CPU" {
		t.Fatalf("monitor asked for %q in %q with %v", mon.id, mon.region, mon.q)
	}
	if _, err := c.Do(ctx, "GET", rg+"/Microsoft.Compute/virtualMachineScaleSets/web/providers/Microsoft.Insights/metricDefinitions", nil, &out); err != nil || out["resource"] != mon.id {
		t.Fatalf("definitions %v %v", out, err)
	}
	var ae *arm.Error
	if _, err := c.Do(ctx, "GET", rg+"/Microsoft.Compute/virtualMachineScaleSets/web/providers/Microsoft.Insights/metrics?metricnames=Nope", nil, nil); !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, "Nope") {
		t.Fatalf("bad metric: %v", err)
	}
	if _, err := c.Do(ctx, "GET", rg+"/Microsoft.Compute/virtualMachineScaleSets/gone/providers/Microsoft.Insights/metrics", nil, nil); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("missing set: %v", err)
	}
	filter := "eventTimestamp ge '2026-01-01T00:00:00Z' and resourceUri eq 'x'"
	if _, err := c.Do(ctx, "GET", "/subscriptions/00000000-0000-0000-0000-000000000000/providers/microsoft.insights/eventtypes/management/values?"+url.Values{"$filter": {filter}}.Encode(), nil, &out); err != nil || mon.q.Get("$filter") != filter {
		t.Fatalf("activity %v %v", out, err)
	}
}

func TestAutoscaleSettingValidatedAtPut(t *testing.T) {
	c := startMonitored(t, &fakeMonitor{})
	const setID = rg + "/Microsoft.Compute/virtualMachineScaleSets/web"
	body := func(extra string) string {
		return `{"location":"eastus","properties":{"enabled":true,"targetResourceUri":"` + setID + `"` + extra + `,"profiles":[{"name":"p","capacity":{"minimum":"1","maximum":"3","default":"1"},"rules":[]}]}}`
	}
	path := rg + "/Microsoft.Insights/autoscaleSettings/as"
	var ae *arm.Error
	_, err := c.Do(context.Background(), "PUT", path, []byte(body(`,"predictiveAutoscalePolicy":{"scaleMode":"Enabled"}`)), nil)
	if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, "predictiveAutoscalePolicy") {
		t.Fatalf("predictive autoscale: %v", err)
	}
	if _, err := c.Do(context.Background(), "GET", path, nil, nil); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("a refused setting was stored: %v", err)
	}
	monPut(t, c, path, body("")) // positive control
	// deleted synchronously, as Azure does (az fails on 202)
	resp, err := c.HTTP.Do(mustRequest(t, "DELETE", "http://vmss"+path+"?api-version=2022-10-01"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("DELETE: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, err := c.Do(context.Background(), "GET", path, nil, nil); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("after DELETE: %v", err)
	}
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
