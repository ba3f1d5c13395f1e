package deploy

import (
	"encoding/json"
	"reflect"
	"testing"
)

// The body az sends for `az deployment group create|what-if|validate`: the
// template file spliced in as written under an unquoted key.
func TestStrictJSONAzBody(t *testing.T) {
	body := `{"properties": {"mode": "Incremental", "parameters": {"n": {"value": 2}}, template:{
  // a comment
  "$schema": "https://schema.management.azure.com/schemas/2015-01-01/deploymentTemplate.json#", /* another */
  "contentVersion": "1.0.0.0",
  'variables': {'q': 'say "hi"', "multi": "a
b", "esc": "x\"y\\z", "it": 'it\'s', "num": 1e3,},
  "resources": [ ],
  "outputs": {"url": {"type": "string", "value": "http://x//y/*z*/"}},
}}}`
	got, err := strictJSON([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(got, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, got)
	}
	want := map[string]any{
		"properties": map[string]any{"mode": "Incremental", "parameters": map[string]any{"n": map[string]any{"value": 2.0}}, "template": map[string]any{
			"$schema":        "https://schema.management.azure.com/schemas/2015-01-01/deploymentTemplate.json#",
			"contentVersion": "1.0.0.0",
			"variables":      map[string]any{"q": `say "hi"`, "multi": "a\nb", "esc": `x"y\z`, "it": "it's", "num": 1000.0},
			"resources":      []any{},
			"outputs":        map[string]any{"url": map[string]any{"type": "string", "value": "http://x//y/*z*/"}},
		}},
	}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("got  %v\nwant %v", v, want)
	}
	// Standard JSON passes unchanged in meaning.
	std := `{"a":[1,2,{"b":"c,]"}],"d":true,"e":null}`
	got, err = strictJSON([]byte(std))
	if err != nil || string(got) != std {
		t.Errorf("standard JSON: %s %v", got, err)
	}
	for _, bad := range []string{`{"a": "open`, `{"a": 1 /* open`, `{"a": 'x\`} {
		if _, err := strictJSON([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
