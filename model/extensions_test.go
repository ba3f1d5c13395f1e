package model

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vmss-emulator/vmss/arm"
)

// putWithExtension puts scale set web with one extension.
func putWithExtension(t *testing.T, s *State, name, typ string, settings map[string]any) *arm.Error {
	t.Helper()
	body := setBody(t, 1, nil)
	var m map[string]any
	mustJSON(t, body, &m)
	vp := m["properties"].(map[string]any)["virtualMachineProfile"].(map[string]any)
	vp["extensionProfile"] = map[string]any{"extensions": []any{map[string]any{
		"name": name, "properties": map[string]any{"publisher": "Microsoft.ManagedServices", "type": typ,
			"typeHandlerVersion": "1.0", "settings": settings}}}}
	_, _, e := s.PutScaleSet(id(t, arm.TypeScaleSet, "web"), toJSON(t, m), false)
	return e
}

func TestExtensionNamesValidated(t *testing.T) {
	for _, name := range []string{"../../etc/cron.d/x", "a/b", "..", "-x", "x\x00y", strings.Repeat("x", 81)} {
		s := fixture(t, "10.0.0.0/24")
		e := putWithExtension(t, s, name, "CustomScript", nil)
		if e == nil || e.Code != "InvalidResourceName" || e.Target != name {
			t.Errorf("extension name %q: %v; want InvalidResourceName naming it", name, e)
		}
		if len(s.ScaleSets) != 0 {
			t.Errorf("extension name %q: the scale set was stored", name)
		}
	}
	for _, name := range []string{"customScript", "health_1", "Microsoft.Azure.Extensions.CustomScript"} {
		s := fixture(t, "10.0.0.0/24")
		if e := putWithExtension(t, s, name, "CustomScript", nil); e != nil {
			t.Errorf("extension name %q: %v", name, e)
		}
	}
}

func TestHealthExtensionSettingsValidated(t *testing.T) {
	target := "properties.virtualMachineProfile.extensionProfile.extensions[0].properties.settings."
	for _, tt := range []struct {
		settings map[string]any
		prop     string
	}{
		{map[string]any{"protocol": "http", "port": 80, "intervalInSeconds": 0}, "intervalInSeconds"},
		{map[string]any{"protocol": "http", "port": 80, "intervalInSeconds": -5}, "intervalInSeconds"},
		{map[string]any{"protocol": "http", "port": 80, "intervalInSeconds": "9223372036854775807"}, "intervalInSeconds"},
		{map[string]any{"protocol": "http", "port": 80, "intervalInSeconds": 61}, "intervalInSeconds"},
		{map[string]any{"protocol": "tcp", "port": 80, "numberOfProbes": 0}, "numberOfProbes"},
		{map[string]any{"protocol": "tcp", "port": 70000}, "port"},
		{map[string]any{"protocol": "udp", "port": 80}, "protocol"},
		{map[string]any{"protocol": "tcp", "port": 80, "gracePeriod": 1}, "gracePeriod"},
	} {
		s := fixture(t, "10.0.0.0/24")
		e := putWithExtension(t, s, "health", "ApplicationHealthLinux", tt.settings)
		if e == nil || e.Code != "InvalidParameter" || e.Target != target+tt.prop || !strings.Contains(e.Message, tt.prop) {
			t.Errorf("settings %v: %v; want InvalidParameter naming %s", tt.settings, e, tt.prop)
		}
		if len(s.ScaleSets) != 0 {
			t.Errorf("settings %v: the scale set was stored", tt.settings)
		}
	}
	// Positive controls: Azure's bounds and defaults pass.
	for _, set := range []map[string]any{
		{"protocol": "http", "port": 80, "requestPath": "/", "intervalInSeconds": 5, "numberOfProbes": 1},
		{"protocol": "https", "port": "443", "intervalInSeconds": "60", "numberOfProbes": 24, "gracePeriod": 14400},
		{"protocol": "tcp", "port": 80},
		nil,
	} {
		s := fixture(t, "10.0.0.0/24")
		if e := putWithExtension(t, s, "health", "ApplicationHealthLinux", set); e != nil {
			t.Errorf("settings %v: %v", set, e)
		}
	}
	// Other extensions' settings are theirs.
	s := fixture(t, "10.0.0.0/24")
	if e := putWithExtension(t, s, "cse", "CustomScript", map[string]any{"intervalInSeconds": 0}); e != nil {
		t.Errorf("CustomScript with intervalInSeconds 0: %v", e)
	}
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func toJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
