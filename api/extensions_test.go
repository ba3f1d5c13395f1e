package api_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

func TestScaleSetExtensionsMergeByName(t *testing.T) {
	c, st := start(t)
	network(t, c)
	put(t, c, rg+"/Microsoft.Compute/virtualMachineScaleSets/web", scaleSetBody(1), nil)
	ext := rg + "/Microsoft.Compute/virtualMachineScaleSets/web/extensions/"
	put(t, c, ext+"a", `{"properties":{"publisher":"Microsoft.Azure.Extensions","type":"CustomScript","settings":{"commandToExecute":"true"},"protectedSettings":{"script":"c2VjcmV0"}}}`, nil)
	var got arm.Extension
	put(t, c, ext+"b", `{"properties":{"publisher":"Microsoft.OSTCExtensions","type":"LinuxDiagnostic"}}`, &got)
	if got.Name != "b" || got.Type != arm.TypeScaleSetExt || got.Properties.ProtectedSettings != nil {
		t.Errorf("PUT answer %+v", got)
	}
	// Replacing b keeps a (and a's protected settings, which GET never shows).
	put(t, c, ext+"b", `{"properties":{"publisher":"Microsoft.OSTCExtensions","type":"LinuxDiagnostic","typeHandlerVersion":"2.3"}}`, nil)
	var ss arm.VirtualMachineScaleSet
	if _, err := c.Do(context.Background(), "GET", rg+"/Microsoft.Compute/virtualMachineScaleSets/web", nil, &ss); err != nil {
		t.Fatal(err)
	}
	exts := ss.Properties.VirtualMachineProfile.ExtensionProfile.Extensions
	if len(exts) != 2 || exts[0].Name != "a" || exts[1].Properties.TypeHandlerVersion != "2.3" || exts[0].Properties.ProtectedSettings != nil {
		t.Fatalf("extensions %+v", exts)
	}
	st.View(func(s *model.State) {
		for _, x := range s.ScaleSets {
			if p := x.Profile().ExtensionProfile.Extensions[0].Properties.ProtectedSettings; len(p) == 0 {
				t.Error("protected settings of a were lost")
			}
		}
	})
	if _, err := c.Do(context.Background(), "GET", ext+"a", nil, &got); err != nil || got.Name != "a" {
		t.Errorf("GET extension: %v %+v", err, got)
	}
	op, err := c.Do(context.Background(), "DELETE", ext+"a", nil, nil)
	if err != nil || c.Wait(context.Background(), op, nil) != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(context.Background(), "GET", ext+"a", nil, nil); arm.AsError(err).Status != 404 {
		t.Errorf("deleted extension: %v", err)
	}
	if _, err := c.Do(context.Background(), "PUT", rg+"/Microsoft.Compute/virtualMachineScaleSets/none/extensions/a", json.RawMessage(`{"properties":{}}`), nil); arm.AsError(err).Status != 404 {
		t.Errorf("extension of a missing set: %v", err)
	}
}

func TestListKeysShapeByAPIVersion(t *testing.T) {
	c, _ := start(t)
	sa := rg + "/Microsoft.Storage/storageAccounts/diag1"
	if _, err := c.Do(context.Background(), "POST", sa+"/listKeys", nil, nil); arm.AsError(err).Status != 404 {
		t.Errorf("listKeys of a missing account: %v", err)
	}
	put(t, c, sa, `{"location":"eastus","properties":{"accountType":"Standard_LRS"}}`, nil)
	var old map[string]any
	if _, err := c.Do(context.Background(), "POST", sa+"/listKeys?api-version=2015-06-15", nil, &old); err != nil || old["key1"] == nil || old["key1"] == old["key2"] {
		t.Errorf("2015-06-15 listKeys: %v %v", err, old)
	}
	var cur struct {
		Keys []struct{ KeyName, Value string }
	}
	if _, err := c.Do(context.Background(), "POST", sa+"/listKeys", nil, &cur); err != nil || len(cur.Keys) != 2 || cur.Keys[0].Value != old["key1"] {
		t.Errorf("current listKeys: %v %+v", err, cur)
	}
}

func TestListDeploymentsWithoutEngine(t *testing.T) {
	c, _ := start(t)
	var out struct{ Value []any }
	if _, err := c.Do(context.Background(), "GET", rg+"/Microsoft.Resources/deployments", nil, &out); err != nil || out.Value == nil || len(out.Value) != 0 {
		t.Errorf("list: %v %+v", err, out)
	}
}
