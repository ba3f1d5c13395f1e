package workload

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/nsnet"
	"github.com/vmss-emulator/vmss/reconcile"
)

type healthProbe struct {
	mu     sync.Mutex
	health string
	cancel context.CancelFunc
	done   chan struct{}
}

func (p *healthProbe) state() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.health
}

func (p *healthProbe) stop() {
	p.cancel()
	<-p.done
}

type healthSettings struct {
	Protocol    string  `json:"protocol"`
	Port        arm.Int `json:"port"`
	RequestPath string  `json:"requestPath"`
	Interval    arm.Int `json:"intervalInSeconds"`
	Probes      arm.Int `json:"numberOfProbes"`
}

// StartHealth starts the Application Health extension's prober, when the
// instance has one and it is not probed yet: binary mode (HTTP 200 or a TCP connect is healthy) and
// rich mode (a 2xx JSON body {"ApplicationHealthState": "Healthy"}).
func (w *Runner) StartHealth(in reconcile.InstanceSpec) {
	var set *healthSettings
	for _, e := range in.Extensions {
		if strings.EqualFold(e.Properties.Type, "ApplicationHealthLinux") {
			var s healthSettings
			_ = json.Unmarshal(orEmpty(e.Properties.Settings), &s) // settings of another shape probe with the defaults
			set = &s
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if set == nil || w.health[in.Netns] != nil {
		return
	}
	iv := healthInterval(int64(set.Interval), w.cfg.HealthIntervalScale, w.cfg.HealthInterval)
	need := int(set.Probes)
	if need < 1 {
		need = 1
	}
	ctx, cancel := context.WithCancel(w.base)
	p := &healthProbe{health: "Unknown", cancel: cancel, done: make(chan struct{})}
	w.health[in.Netns] = p
	dial := w.inst.Dialer(in.Netns)
	go func() {
		defer close(p.done)
		defer func() {
			if r := recover(); r != nil { // a prober must not end the daemon
				w.log.Error("application health prober stopped", "instance", in.VMName, "panic", r)
				p.mu.Lock()
				p.health = "Unknown"
				p.mu.Unlock()
			}
		}()
		t := time.NewTicker(iv)
		defer t.Stop()
		run, last := 0, ""
		for {
			res := probeApp(ctx, dial, set, iv)
			if res == last {
				run++
			} else {
				run, last = 1, res
			}
			if run >= need {
				p.mu.Lock()
				p.health = res
				p.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// healthInterval is the prober's period: the extension's intervalInSeconds
// in Azure's range 5-60 (a value outside it, possible in a state written
// before the API checked it, is taken as the default 5), times scale when
// positive, or override when set; never below a millisecond.
func healthInterval(seconds int64, scale float64, override time.Duration) time.Duration {
	if seconds < 5 || seconds > 60 {
		seconds = 5
	}
	iv := time.Duration(seconds) * time.Second
	if scale > 0 {
		iv = time.Duration(float64(iv) * scale)
	}
	if override > 0 {
		iv = override
	}
	return max(iv, time.Millisecond)
}

// Health is what the instance's Application Health extension reports now
// (Healthy, Unhealthy, Unknown before the first probe settles), or "" when it
// has none.
func (w *Runner) Health(netns string) string {
	w.mu.Lock()
	hp := w.health[netns]
	w.mu.Unlock()
	if hp == nil {
		return ""
	}
	return hp.state()
}

// probeApp probes the application from inside the instance, at 127.0.0.1.
func probeApp(ctx context.Context, dial nsnet.DialFunc, s *healthSettings, timeout time.Duration) string {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(int64(s.Port)))
	switch strings.ToLower(s.Protocol) {
	case "tcp":
		c, err := dial(ctx, "tcp", addr)
		if err != nil {
			return "Unhealthy"
		}
		c.Close()
		return "Healthy"
	}
	scheme := "http"
	if strings.EqualFold(s.Protocol, "https") {
		scheme = "https"
	}
	tr := &http.Transport{DialContext: dial, DisableKeepAlives: true}
	if scheme == "https" {
		tr.TLSClientConfig = insecureTLS()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+"/"+strings.TrimPrefix(s.RequestPath, "/"), nil)
	if err != nil {
		return "Unhealthy"
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "Unhealthy"
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var rich struct {
		State string `json:"ApplicationHealthState"`
	}
	if json.Unmarshal(body, &rich) == nil && rich.State != "" {
		if resp.StatusCode/100 == 2 && strings.EqualFold(rich.State, "Healthy") {
			return "Healthy"
		}
		return "Unhealthy"
	}
	if resp.StatusCode == http.StatusOK {
		return "Healthy"
	}
	return "Unhealthy"
}

// StopHealth stops probing an instance's application (it stops or goes).
func (w *Runner) StopHealth(netns string) {
	w.mu.Lock()
	hp := w.health[netns]
	delete(w.health, netns)
	w.mu.Unlock()
	if hp != nil {
		hp.stop()
	}
}
