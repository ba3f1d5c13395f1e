package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vmss-emulator/vmss/internal/defaults"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/vmss-emulator/vmss/arm"
)

// DefaultSocket is where the daemon listens unless told otherwise.
const DefaultSocket = defaults.Socket

// APIVersion is sent with every request that Azure accepts it for; others
// get the newest version Azure publishes for their type (arm.VersionFor).
const APIVersion = "2024-03-01"

// Client is an ARM client bound to one daemon socket.
type Client struct {
	Socket       string
	Subscription string
	HTTP         *http.Client
	PollInterval time.Duration // how often Wait polls; default 50ms
}

// New returns a client for the daemon at socket.
func New(socket string) *Client {
	if socket == "" {
		socket = DefaultSocket
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConnsPerHost: 8,
	}
	return &Client{
		Socket:       socket,
		Subscription: "00000000-0000-0000-0000-000000000000",
		HTTP:         &http.Client{Transport: tr},
		PollInterval: 50 * time.Millisecond,
	}
}

// ResourceID builds a resource id in the client's subscription.
func (c *Client) ResourceID(group, typ string, names ...string) string {
	id, err := arm.NewID(c.Subscription, group, typ, names...)
	if err != nil {
		return ""
	}
	return id.String()
}

// Op is a started long-running operation; zero when the call finished at once.
type Op struct {
	URL string
}

// Done reports whether there is nothing to wait for.
func (o Op) Done() bool { return o.URL == "" }

// ErrDaemonDown is returned (wrapped) when nothing answers on the socket.
var ErrDaemonDown = errors.New("the vmss daemon is not running")

// Do sends a request. path is an ARM path (api-version is added); body, when
// not nil, is sent as JSON ([]byte and json.RawMessage as they are); out, when
// not nil, receives the JSON answer. ARM errors come back as *arm.Error.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) (Op, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case json.RawMessage:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return Op{}, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(data)
	}
	u := path
	if !strings.HasPrefix(u, "http") {
		u = "http://vmss" + path
	}
	if !strings.Contains(u, "api-version=") {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "api-version=" + url.QueryEscape(arm.VersionFor(path, APIVersion))
	}
	data, hdr, err := c.send(ctx, method, path, u, rd)
	if err != nil {
		return Op{}, err
	}
	if method == http.MethodGet && out != nil {
		if data, err = c.allPages(ctx, path, data); err != nil {
			return Op{}, err
		}
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return Op{}, fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return Op{URL: hdr.Get("Azure-AsyncOperation")}, nil
}

// send sends one request to URL u and answers the body of a success, or
// the ARM error.
func (c *Client) send(ctx context.Context, method, path, u string, rd io.Reader) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, nil, c.dialError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode >= 400 {
		if ae := arm.DecodeError(resp.StatusCode, data); ae != nil {
			return nil, nil, ae
		}
		return nil, nil, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	return data, resp.Header, nil
}

// allPages follows the nextLink of a list answer to the last page and
// answers one list of every page's values; other answers are unchanged.
func (c *Client) allPages(ctx context.Context, path string, data []byte) ([]byte, error) {
	type page struct {
		Value    []json.RawMessage `json:"value"`
		NextLink string            `json:"nextLink,omitempty"`
	}
	var p page
	if json.Unmarshal(data, &p) != nil || p.NextLink == "" {
		return data, nil
	}
	all := p.Value
	for next := p.NextLink; next != ""; {
		raw, _, err := c.send(ctx, http.MethodGet, path, next, nil)
		if err != nil {
			return nil, err
		}
		var more page
		if err := json.Unmarshal(raw, &more); err != nil {
			return nil, fmt.Errorf("decode the page %s of %s: %w", next, path, err)
		}
		if more.NextLink == next {
			return nil, fmt.Errorf("GET %s: the page %s links to itself", path, next)
		}
		all = append(all, more.Value...)
		next = more.NextLink
	}
	return json.Marshal(page{Value: all})
}

func (c *Client) dialError(err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w (no daemon on %s): start it with: sudo vmss serve", ErrDaemonDown, c.Socket)
	case errors.Is(err, syscall.EACCES), errors.Is(err, os.ErrPermission):
		return fmt.Errorf("cannot open %s: permission denied; the control socket is root-only, run with sudo: %w", c.Socket, err)
	}
	return err
}

// OpStatus is the body of an operation status.
type OpStatus struct {
	Status string     `json:"status"`
	Error  *arm.Error `json:"error"`
}

// Wait polls an operation until it ends. progress, when not nil, is called
// after every poll. A failed operation returns its ARM error.
func (c *Client) Wait(ctx context.Context, op Op, progress func()) error {
	if op.Done() {
		return nil
	}
	iv := c.PollInterval
	if iv <= 0 {
		iv = 50 * time.Millisecond
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		var st OpStatus
		if _, err := c.Do(ctx, http.MethodGet, op.URL, nil, &st); err != nil {
			return err
		}
		if progress != nil {
			progress()
		}
		switch st.Status {
		case "Succeeded":
			return nil
		case "Failed", "Canceled":
			if st.Error != nil {
				return st.Error
			}
			return fmt.Errorf("operation %s", strings.ToLower(st.Status))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
