package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/model"
)

// The API's JSON bodies are fuzzed against the handler in memory: no root,
// no kernel (StaticRuntime). Each input is one request with a fuzzed body on
// one of fuzzRoutes, against a fresh copy of a state that has something of
// every type, so references in the body can resolve. Whatever the body:
// no panic, no 5xx, a JSON answer, a refused request changes nothing, and
// an accepted one leaves a state that renders and loads again (a state
// that does not load would stop the daemon at its next start).
//
// Run: go test ./api -run '^$' -fuzz FuzzAPIBodies -fuzztime 5m -parallel 1

const fuzzSub = "/subscriptions/00000000-0000-0000-0000-000000000000"

var fuzzRoutes = []struct{ method, path string }{
	{"PUT", rg + "/Microsoft.Network/virtualNetworks/vnet"},
	{"PATCH", rg + "/Microsoft.Network/virtualNetworks/vnet"},
	{"PUT", rg + "/Microsoft.Network/virtualNetworks/vnet/subnets/sn2"},
	{"PUT", rg + "/Microsoft.Network/publicIPAddresses/pip2"},
	{"PUT", rg + "/Microsoft.Network/loadBalancers/lb"},
	{"PATCH", rg + "/Microsoft.Network/loadBalancers/lb"},
	{"PUT", rg + "/Microsoft.Network/loadBalancers/ilb"},
	{"PUT", rg + "/Microsoft.Network/networkInterfaces/nic"},
	{"PUT", rg + "/Microsoft.Network/networkSecurityGroups/nsg"},
	{"PUT", rg + "/Microsoft.Insights/autoscaleSettings/as"},
	{"PUT", rg + "/Microsoft.Compute/virtualMachineScaleSets/web"},
	{"PATCH", rg + "/Microsoft.Compute/virtualMachineScaleSets/web"},
	{"PUT", rg + "/Microsoft.Compute/virtualMachineScaleSets/web2"},
	{"PUT", rg + "/Microsoft.Compute/virtualMachineScaleSets/web/extensions/ext"},
	{"POST", rg + "/Microsoft.Compute/virtualMachineScaleSets/web/delete"},
	{"POST", rg + "/Microsoft.Compute/virtualMachineScaleSets/web/powerOff"},
	{"POST", rg + "/Microsoft.Compute/virtualMachineScaleSets/web/reimage"},
	{"POST", rg + "/Microsoft.Compute/virtualMachineScaleSets/web/manualUpgrade"},
	{"POST", rg + "/Microsoft.Compute/virtualMachineScaleSets/web/injectFault"},
	{"PUT", rg + "/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines/0"},
	{"POST", rg + "/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines/0/runCommand"},
	{"PUT", rg + "/Microsoft.Compute/virtualMachines/vm"},
	{"PATCH", rg + "/Microsoft.Compute/virtualMachines/vm"},
	{"POST", rg + "/Microsoft.Compute/virtualMachines/vm/restart"},
	{"PUT", fuzzSub + "/resourceGroups/g2"},
}

// fuzzBase is the state every input starts from: a VNET, a public IP, a
// load balancer with a NAT pool, a scale set of 2 and a VM.
var fuzzBase struct {
	once  sync.Once
	state []byte
	key   []byte // the state's sealing key (model.KeyFile), when it has one
	err   error
}

func fuzzBaseState(t testing.TB) []byte {
	fuzzBase.once.Do(func() {
		dir, err := os.MkdirTemp("", "vmsst-fuzzbase-")
		if err != nil {
			fuzzBase.err = err
			return
		}
		defer os.RemoveAll(dir)
		st, err := model.Open(dir, model.DefaultConfig())
		if err != nil {
			fuzzBase.err = err
			return
		}
		defer st.Close()
		s := &Server{Store: st, Runtime: StaticRuntime{}}
		for _, seed := range fuzzSeeds() {
			if seed.base {
				if w := call(t, s, fuzzRoutes[seed.route].method, fuzzRoutes[seed.route].path, seed.body); w.Code/100 != 2 {
					fuzzBase.err = &baseError{fuzzRoutes[seed.route].path, w.Body.String()}
					return
				}
			}
		}
		fuzzBase.state, fuzzBase.err = os.ReadFile(filepath.Join(dir, model.StateFile))
		if key, err := os.ReadFile(filepath.Join(dir, model.KeyFile)); err == nil {
			fuzzBase.key = key
		}
	})
	if fuzzBase.err != nil {
		t.Fatalf("base state: %v", fuzzBase.err)
	}
	return fuzzBase.state
}

type baseError struct{ path, answer string }

func (e *baseError) Error() string { return e.path + ": " + e.answer }

type fuzzSeed struct {
	route int
	body  string
	base  bool // part of the base state
}

func routeIndex(method, path string) int {
	for i, r := range fuzzRoutes {
		if r.method == method && r.path == path {
			return i
		}
	}
	panic("no fuzz route " + method + " " + path)
}

func fuzzSeeds() []fuzzSeed {
	lbID := rg + "/Microsoft.Network/loadBalancers/lb"
	snID := rg + "/Microsoft.Network/virtualNetworks/vnet/subnets/sn"
	ss := scaleSetBody(2)
	ssNAT := strings.Replace(ss, `"subnet":{"id"`, `"loadBalancerBackendAddressPools":[{"id":"`+lbID+`/backendAddressPools/be"}],"loadBalancerInboundNatPools":[{"id":"`+lbID+`/inboundNatPools/nat"}],"subnet":{"id"`, 1)
	return []fuzzSeed{
		{routeIndex("PUT", rg+"/Microsoft.Network/virtualNetworks/vnet"), vnetBody, true},
		{routeIndex("PUT", rg+"/Microsoft.Network/publicIPAddresses/pip2"), `{"properties":{"publicIPAllocationMethod":"Static"},"sku":{"name":"Standard"}}`, true},
		{routeIndex("PUT", rg+"/Microsoft.Network/loadBalancers/lb"), `{"properties":{
			"frontendIPConfigurations":[{"name":"fe","properties":{"publicIPAddress":{"id":"` + rg + `/Microsoft.Network/publicIPAddresses/pip2"}}}],
			"backendAddressPools":[{"name":"be"}],
			"probes":[{"name":"p","properties":{"protocol":"Http","port":80,"requestPath":"/","intervalInSeconds":5}}],
			"loadBalancingRules":[{"name":"r","properties":{"frontendIPConfiguration":{"id":"` + lbID + `/frontendIPConfigurations/fe"},"backendAddressPool":{"id":"` + lbID + `/backendAddressPools/be"},"probe":{"id":"` + lbID + `/probes/p"},"protocol":"Tcp","frontendPort":80,"backendPort":80}}],
			"inboundNatPools":[{"name":"nat","properties":{"frontendIPConfiguration":{"id":"` + lbID + `/frontendIPConfigurations/fe"},"protocol":"Tcp","frontendPortRangeStart":50000,"frontendPortRangeEnd":50099,"backendPort":22}}]}}`, true},
		{routeIndex("PUT", rg+"/Microsoft.Compute/virtualMachineScaleSets/web"), ssNAT, true},
		{routeIndex("PUT", rg+"/Microsoft.Compute/virtualMachines/vm"), `{"properties":{"hardwareProfile":{"vmSize":"Standard_B1s"},
			"osProfile":{"computerName":"vm","adminUsername":"azureuser","adminPassword":"Secr3t!pass"},
			"networkProfile":{"networkInterfaces":[{"id":"` + rg + `/Microsoft.Network/networkInterfaces/vmnic"}]}}}`, false},
		{routeIndex("PUT", rg+"/Microsoft.Network/networkInterfaces/nic"), `{"properties":{"ipConfigurations":[{"name":"c1","properties":{"subnet":{"id":"` + snID + `"}}},{"name":"c2","properties":{"subnet":{"id":"` + snID + `"},"privateIPAddress":"10.0.0.30"}}]}}`, false},
		{routeIndex("PUT", rg+"/Microsoft.Network/loadBalancers/ilb"), `{"properties":{"frontendIPConfigurations":[{"name":"a","properties":{"subnet":{"id":"` + snID + `"}}},{"name":"b","properties":{"subnet":{"id":"` + snID + `"},"privateIPAddress":"10.0.0.4","privateIPAllocationMethod":"Static"}}]}}`, false},
		{routeIndex("PATCH", rg+"/Microsoft.Network/loadBalancers/lb"), `{"tags":{"a":"b"}}`, false},
		{routeIndex("PATCH", rg+"/Microsoft.Network/virtualNetworks/vnet"), `{"tags":{"a":"b"}}`, false},
		{routeIndex("PUT", rg+"/Microsoft.Network/virtualNetworks/vnet/subnets/sn2"), `{"properties":{"addressPrefix":"10.0.1.0/24"}}`, false},
		{routeIndex("PUT", rg+"/Microsoft.Network/networkSecurityGroups/nsg"), `{"location":"westus","properties":{"securityRules":[]}}`, false},
		{routeIndex("PUT", rg+"/Microsoft.Insights/autoscaleSettings/as"), `{"properties":{"enabled":true,"profiles":[]}}`, false},
		{routeIndex("PATCH", rg+"/Microsoft.Compute/virtualMachineScaleSets/web"), `{"sku":{"capacity":"3"},"properties":{"upgradePolicy":{"mode":"Rolling"}}}`, false},
		{routeIndex("PUT", rg+"/Microsoft.Compute/virtualMachineScaleSets/web2"), strings.Replace(ss, `"overprovision":"false"`, `"overprovision":true,"singlePlacementGroup":false,"scaleInPolicy":{"rules":["NewestVM"]},"automaticRepairsPolicy":{"enabled":true,"gracePeriod":"PT10M"}`, 1), false},
		{routeIndex("PUT", rg+"/Microsoft.Compute/virtualMachineScaleSets/web/extensions/ext"), `{"properties":{"publisher":"Microsoft.ManagedServices","type":"ApplicationHealthLinux","typeHandlerVersion":"1.0","settings":{"protocol":"http","port":80,"requestPath":"/","intervalInSeconds":5,"numberOfProbes":1}}}`, false},
		{routeIndex("PUT", rg+"/Microsoft.Compute/virtualMachineScaleSets/web/extensions/ext"), `{"properties":{"publisher":"Microsoft.Azure.Extensions","type":"CustomScript","typeHandlerVersion":"2.1","settings":{"commandToExecute":"echo hi"},"protectedSettings":{"script":"ZWNobyBoaQ=="},"provisionAfterExtensions":[]}}`, false},
		{routeIndex("POST", rg+"/Microsoft.Compute/virtualMachineScaleSets/web/delete"), `{"instanceIds":["1"]}`, false},
		{routeIndex("POST", rg+"/Microsoft.Compute/virtualMachineScaleSets/web/powerOff"), `{"instanceIds":["0","1"]}`, false},
		{routeIndex("POST", rg+"/Microsoft.Compute/virtualMachineScaleSets/web/reimage"), ``, false},
		{routeIndex("POST", rg+"/Microsoft.Compute/virtualMachineScaleSets/web/manualUpgrade"), `{"instanceIds":["*"]}`, false},
		{routeIndex("POST", rg+"/Microsoft.Compute/virtualMachineScaleSets/web/injectFault"), `{"faultDomain":1,"state":"down"}`, false},
		{routeIndex("PUT", rg+"/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines/0"), `{"properties":{"protectionPolicy":{"protectFromScaleIn":true}}}`, false},
		{routeIndex("POST", rg+"/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines/0/runCommand"), `{"commandId":"RunShellScript","script":["hostname"]}`, false},
		{routeIndex("PATCH", rg+"/Microsoft.Compute/virtualMachines/vm"), `{"tags":{"a":"b"}}`, false},
		{routeIndex("POST", rg+"/Microsoft.Compute/virtualMachines/vm/restart"), ``, false},
		{routeIndex("PUT", fuzzSub+"/resourceGroups/g2"), `{"location":"westus","tags":{"a":"b"}}`, false},
	}
}

func FuzzAPIBodies(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(uint8(s.route), []byte(s.body))
	}
	// Shapes that once broke things, and JSON oddities.
	for _, b := range []string{`null`, `[]`, `{}`, `{"properties":null}`, `{"sku":{"capacity":-1}}`,
		`{"sku":{"capacity":"9223372036854775807"}}`, `{"properties":{"extensionProfile":{"extensions":[{"name":"../x"}]}}}`,
		`{"instanceIds":null}`, `{"instanceIds":[""]}`, `{"faultDomain":-1,"state":"down"}`, "\xff", `{"a":` + strings.Repeat("[", 10000)} {
		for i := range fuzzRoutes {
			f.Add(uint8(i), []byte(b))
		}
	}
	base := fuzzBaseState(f)
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, model.StateFile), base, 0o600); err != nil {
			t.Fatal(err)
		}
		if fuzzBase.key != nil {
			if err := os.WriteFile(filepath.Join(dir, model.KeyFile), fuzzBase.key, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		st, err := model.Open(dir, model.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		s := &Server{Store: st, Runtime: StaticRuntime{}}
		var before int64
		st.View(func(m *model.State) { before = m.Seq })

		req := httptest.NewRequest(r.method, r.path+"?api-version="+arm.VersionFor(r.path, "2024-03-01"), bytes.NewReader(body))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)

		if w.Code >= 500 {
			t.Fatalf("%s %s: %d %s", r.method, r.path, w.Code, w.Body.String())
		}
		if w.Body.Len() > 0 && !json.Valid(w.Body.Bytes()) || w.Body.Len() == 0 && w.Code != http.StatusNoContent && w.Code != http.StatusAccepted {
			t.Fatalf("%s %s: %d answer is not JSON: %q", r.method, r.path, w.Code, w.Body.String())
		}
		var after int64
		st.View(func(m *model.State) { after = m.Seq })
		if w.Code >= 400 {
			if after != before {
				t.Fatalf("%s %s: refused with %d but the state changed (seq %d -> %d): %s", r.method, r.path, w.Code, before, after, w.Body.String())
			}
			return
		}
		// Accepted: the resource renders, and the saved state loads.
		if r.method != "POST" {
			g := httptest.NewRecorder()
			s.ServeHTTP(g, httptest.NewRequest("GET", r.path+"?api-version="+arm.VersionFor(r.path, "2024-03-01"), nil))
			if g.Code >= 500 || !json.Valid(g.Body.Bytes()) {
				t.Fatalf("GET %s after an accepted %s: %d %q", r.path, r.method, g.Code, g.Body.String())
			}
		}
		if after != before {
			st.Close()
			again, err := model.Open(dir, model.DefaultConfig())
			if err != nil {
				t.Fatalf("the state saved after %s %s does not load: %v", r.method, r.path, err)
			}
			again.Close()
		}
	})
}
