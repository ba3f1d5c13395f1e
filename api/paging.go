package api

import (
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"

	"github.com/vmss-emulator/vmss/arm"
)

// DefaultPageSize is the most items one page of a list holds, as ARM's
// resource lists: the rest follows a nextLink.
const DefaultPageSize = 1000

// writePage answers one page of a list, as ARM does: {"value": [...]} and,
// when items remain, "nextLink": the request's URL with a $skiptoken that
// resumes after this page. Azure's clients (az, the SDKs' pagers, the
// emulator's own client) follow it until a page has none. The token is
// opaque to clients; a list that changed between pages is read on from the
// same position.
func writePage[T any](s *Server, req *request, items []T) {
	size := s.PageSize
	if size <= 0 {
		size = DefaultPageSize
	}
	q := req.r.URL.Query()
	start := 0
	if tok := q.Get("$skiptoken"); tok != "" {
		n, err := decodeSkipToken(tok)
		if err != nil {
			writeErr(req.w, arm.Errorf(400, "InvalidSkipToken", "$skiptoken", "The $skiptoken '%s' is not one this API gave in a nextLink: list again without it.", tok))
			return
		}
		start = min(n, len(items))
	}
	end := min(start+size, len(items))
	page := items[start:end]
	if page == nil {
		page = []T{}
	}
	out := map[string]any{"value": page}
	if end < len(items) {
		// The request's query as sent, with a new $skiptoken (spelled with
		// its $, as ARM's nextLinks are).
		var kept []string
		for _, kv := range strings.Split(req.r.URL.RawQuery, "&") {
			if k, _, _ := strings.Cut(kv, "="); kv != "" && k != "$skiptoken" && k != "%24skiptoken" {
				kept = append(kept, kv)
			}
		}
		kept = append(kept, "$skiptoken="+encodeSkipToken(end))
		u := url.URL{Scheme: scheme(req.r), Host: hostOf(req.r), Path: req.r.URL.Path, RawQuery: strings.Join(kept, "&")}
		out["nextLink"] = u.String()
	}
	writeJSON(req.w, 200, out)
}

func encodeSkipToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(offset)))
}

func decodeSkipToken(tok string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < 3 || string(b[:2]) != "o:" {
		return 0, strconv.ErrSyntax
	}
	n, err := strconv.Atoi(string(b[2:]))
	if err != nil || n < 0 {
		return 0, strconv.ErrSyntax
	}
	return n, nil
}
