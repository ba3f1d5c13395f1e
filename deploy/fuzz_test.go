package deploy

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/vmss-emulator/vmss/model"
)

// FuzzDeploymentBodies sends fuzzed deployment requests (PUT and what-if)
// to the API with the deploy engine behind it, in memory (no root, no
// kernel). Whatever the body: no panic, no 5xx, a JSON answer, and a refused
// request changes nothing.
//
// Run: go test ./deploy -run '^$' -fuzz FuzzDeploymentBodies -fuzztime 5m -parallel 1
func FuzzDeploymentBodies(f *testing.F) {
	seeds := []map[string]any{
		body(readTemplate(f, "scale.json"), "", map[string]any{"setName": "a", "capacity": 1}, false),
		body(readTemplate(f, "nat.json"), "", natParams(1), false),
		body(readTemplate(f, "jumpbox.json"), "Complete", map[string]any{"setName": "Jump", "adminUsername": "azureuser", "adminPassword": password}, false),
		body(readTemplate(f, "autoscale.json"), "", map[string]any{"setName": "Auto", "adminPassword": password}, true),
	}
	for _, s := range seeds {
		b, err := json.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(false, b)
		f.Add(true, b)
	}
	for _, b := range []string{`{}`, `{"properties":null}`, `{"properties":{"template":null}}`,
		`{"properties":{"template":{"resources":[{"type":"Microsoft.Network/virtualNetworks","apiVersion":"2020-06-01","name":"[concat('v', copyIndex())]","copy":{"name":"l","count":3},"properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]}}}]}}}`,
		`{"properties":{"templateLink":{"uri":"http://x"}}}`, `{"properties":{"mode":"Complete","template":{"resources":[]}}}`,
		`{"properties":{"template":{"parameters":{"p":{"type":"int"}},"resources":[]},"parameters":{"p":{"value":"x"}}}}`} {
		f.Add(false, []byte(b))
		f.Add(true, []byte(b))
	}
	f.Fuzz(func(t *testing.T, whatIf bool, data []byte) {
		fx := newFixture(t, nil)
		method, path := http.MethodPut, deploymentPath("fz", "d")
		if whatIf {
			method, path = http.MethodPost, path+"/whatIf"
		}
		var before int64
		fx.store.View(func(s *model.State) { before = s.Seq })
		w := httptest.NewRecorder()
		fx.srv.ServeHTTP(w, httptest.NewRequest(method, path+"?api-version=2022-09-01", bytes.NewReader(data)))
		if w.Code >= 500 {
			t.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body.String())
		}
		if w.Body.Len() > 0 && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %s: %d answer is not JSON: %q", method, path, w.Code, w.Body.String())
		}
		if w.Code >= 400 {
			var after int64
			fx.store.View(func(s *model.State) { after = s.Seq })
			if after != before {
				t.Fatalf("%s: refused with %d but the state changed: %s", method, w.Code, w.Body.String())
			}
		}
		fx.eng.Close() // ends a deployment the request started
	})
}
