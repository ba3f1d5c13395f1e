package deploy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vmss-emulator/vmss/arm"
	"github.com/vmss-emulator/vmss/client"
)

// handlerTransport is an http.RoundTripper that serves requests with an
// in-process handler: the engine's requests take the same path as a remote
// client's, without a socket.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	w := &recorder{header: http.Header{}}
	t.h.ServeHTTP(w, req)
	if req.Body != nil {
		req.Body.Close()
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{
		Status:        http.StatusText(w.status),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.header,
		Body:          io.NopCloser(bytes.NewReader(w.body.Bytes())),
		ContentLength: int64(w.body.Len()),
		Request:       req,
	}, nil
}

// recorder is the http.ResponseWriter of handlerTransport.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(p)
}

// armClient sends ARM requests to the in-process API.
type armClient struct {
	c *client.Client
}

func newARMClient(h http.Handler, sub string, poll time.Duration) *armClient {
	c := &client.Client{Socket: "in-process", Subscription: sub, HTTP: &http.Client{Transport: handlerTransport{h}}, PollInterval: poll}
	return &armClient{c: c}
}

// path is an id with the resource's api-version ("" keeps the client's).
func withVersion(id, apiVersion string) string {
	if apiVersion == "" {
		return id
	}
	return id + "?api-version=" + url.QueryEscape(apiVersion)
}

// get answers the resource, or an error wrapping errNotFound.
func (a *armClient) get(ctx context.Context, id, apiVersion string) (map[string]any, error) {
	var out map[string]any
	if _, err := a.c.Do(ctx, http.MethodGet, withVersion(id, apiVersion), nil, &out); err != nil {
		if isNotFound(err) {
			return nil, errors.Join(errNotFound, err)
		}
		return nil, err
	}
	return out, nil
}

// put sends the body and waits for the operation to end.
func (a *armClient) put(ctx context.Context, id, apiVersion string, body map[string]any) error {
	op, err := a.c.Do(ctx, http.MethodPut, withVersion(id, apiVersion), body, nil)
	if err != nil {
		return err
	}
	return a.c.Wait(ctx, op, nil)
}

// del deletes and waits; a missing resource is not an error.
func (a *armClient) del(ctx context.Context, id, apiVersion string) error {
	op, err := a.c.Do(ctx, http.MethodDelete, withVersion(id, apiVersion), nil, nil)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return err
	}
	return a.c.Wait(ctx, op, nil)
}

// post sends an action (listKeys) and answers its body.
func (a *armClient) post(ctx context.Context, id, action, apiVersion string) (map[string]any, error) {
	var out map[string]any
	if _, err := a.c.Do(ctx, http.MethodPost, withVersion(id+"/"+action, apiVersion), nil, &out); err != nil {
		if isNotFound(err) {
			return nil, errors.Join(errNotFound, err)
		}
		return nil, err
	}
	return out, nil
}

// list answers the value array of a list call.
func (a *armClient) list(ctx context.Context, path string) ([]map[string]any, error) {
	var out struct {
		Value []map[string]any `json:"value"`
	}
	if _, err := a.c.Do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return out.Value, nil
}

var errNotFound = errors.New("not found")

func isNotFound(err error) bool {
	var ae *arm.Error
	if errors.As(err, &ae) {
		return ae.Status == http.StatusNotFound || strings.HasSuffix(ae.Code, "NotFound")
	}
	return false
}
