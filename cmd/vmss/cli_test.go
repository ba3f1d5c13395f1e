package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSet(t *testing.T) {
	got, err := parseSet([]string{"properties.upgradePolicy.mode=Automatic", "sku.capacity=5", "properties.overprovision=false", "tags.env=dev"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	want := `{"properties":{"overprovision":false,"upgradePolicy":{"mode":"Automatic"}},"sku":{"capacity":5},"tags":{"env":"dev"}}`
	if string(b) != want {
		t.Errorf("parseSet = %s, want %s", b, want)
	}
	if _, err := parseSet([]string{"novalue"}); err == nil {
		t.Error("--set without = accepted")
	}
}

func TestFlattenLikeAz(t *testing.T) {
	in := map[string]any{"id": "/subscriptions/s/resourceGroups/RG1/providers/Microsoft.Compute/virtualMachineScaleSets/web",
		"name": "web", "properties": map[string]any{"provisioningState": "Succeeded", "nested": map[string]any{"properties": map[string]any{"x": 1.0}}}}
	out := flatten(in).(map[string]any)
	addGroups(out)
	if out["provisioningState"] != "Succeeded" || out["resourceGroup"] != "RG1" || dig(out, "nested.x") != 1.0 {
		t.Errorf("flatten = %v", out)
	}
}

func TestPrintTableAndTSV(t *testing.T) {
	v := []any{map[string]any{"instanceId": "0", "properties": map[string]any{"privateIpAddress": "10.0.0.4"}}}
	cols := []column{col("InstanceId", "instanceId"), col("PrivateIp", "privateIpAddress")}
	var b bytes.Buffer
	g := &globals{output: "table"}
	if err := g.print(&b, v, cols); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(b.String()), "\n"); len(lines) != 3 || !strings.Contains(lines[2], "10.0.0.4") {
		t.Errorf("table:\n%s", b.String())
	}
	b.Reset()
	g.output = "tsv"
	_ = g.print(&b, v, cols)
	if b.String() != "0\t10.0.0.4\n" {
		t.Errorf("tsv %q", b.String())
	}
	if err := (&globals{output: "yaml"}).print(&b, v, cols); err == nil {
		t.Error("unknown output format accepted")
	}
}

func TestDeploymentBodyTypesParameters(t *testing.T) {
	dir := t.TempDir()
	tpl := filepath.Join(dir, "azuredeploy.json")
	os.WriteFile(tpl, []byte(`{"parameters":{"count":{"type":"int"},"on":{"type":"bool"},"tags":{"type":"object"},"name":{"type":"string"}},"resources":[]}`), 0o600)
	pf := filepath.Join(dir, "p.json")
	os.WriteFile(pf, []byte(`{"$schema":"x","contentVersion":"1.0.0.0","parameters":{"name":{"value":"fromfile"},"count":{"value":1}}}`), 0o600)
	body, name, err := deploymentBody(deployFlags{file: tpl, mode: "Incremental", params: []string{"@" + pf, "count=5", "on=true", `tags={"a":"b"}`}})
	if err != nil {
		t.Fatal(err)
	}
	if name != "azuredeploy" {
		t.Errorf("default name %q", name)
	}
	p := body["properties"].(map[string]any)["parameters"].(map[string]any)
	if dig(p, "count.value") != int64(5) || dig(p, "on.value") != true || dig(p, "name.value") != "fromfile" || dig(p, "tags.value.a") != "b" {
		t.Errorf("parameters %v", p)
	}
	if _, _, err := deploymentBody(deployFlags{file: tpl, params: []string{"count=five"}}); err == nil || !strings.Contains(err.Error(), "int") {
		t.Errorf("count=five: %v", err)
	}
}

func TestPreflightRefusesBeforeCreating(t *testing.T) {
	ok := createOpts{name: "web", adminUser: "azureuser", faultDomains: 5, vnetPrefix: "10.0.0.0/16", subnetPrefix: "10.0.0.0/24", count: 3}
	if err := preflightScaleSet(ok); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mod  func(*createOpts)
		want string
	}{
		{func(o *createOpts) { o.adminPassword = "weak" }, "password"},
		{func(o *createOpts) { o.adminUser = "root" }, "not allowed"},
		{func(o *createOpts) { o.count = 101 }, "--single-placement-group false"},
		{func(o *createOpts) { o.subnetPrefix = "10.0.0.7/24" }, "CIDR"},
		{func(o *createOpts) { o.faultDomains = 7 }, "1-5"},
	} {
		o := ok
		c.mod(&o)
		if err := preflightScaleSet(o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", o, err, c.want)
		}
	}
}
