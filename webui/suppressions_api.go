package webui

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"campaignd"
)

// The suppression list's and the replies' JSON API (SPEC §11); the routes
// are in suppressions.go.

// APISuppressions is a page of the list.
type APISuppressions struct {
	Suppressions []campaignd.Suppression `json:"suppressions"`
	Next         string                  `json:"next,omitempty"`
	Total        int                     `json:"total"`
}

func suppressLimit(r *http.Request, def int) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, campaignd.Errorf(campaignd.EINVALID, "Invalid limit %q: 1 to 1000.", v)
	}
	return n, nil
}

func (s *Server) apiSuppressions(w http.ResponseWriter, r *http.Request) {
	sb, err := s.suppressions()
	if err != nil {
		s.Error(w, r, err)
		return
	}
	limit, err := suppressLimit(r, 100)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	q := r.URL.Query()
	list, next, total, err := sb.Suppressions(r.Context(), suppressPrefix(sb, q.Get("q")), q.Get("after"), limit)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if list == nil {
		list = []campaignd.Suppression{}
	}
	for i := range list {
		list[i].At = list[i].At.UTC()
	}
	s.writeJSON(w, r, http.StatusOK, APISuppressions{Suppressions: list, Next: next, Total: total})
}

// apiSuppressRequest is the JSON body of POST /api/v1/suppressions.
type apiSuppressRequest struct {
	Number  string   `json:"number"`
	Numbers []string `json:"numbers"`
	Note    string   `json:"note"`
}

// apiSuppress adds numbers: JSON {"number": …} or {"numbers": […]} (all or
// none: an invalid number is a 400 naming it), or a list as text/csv
// (invalid lines reported, the valid ones imported).
func (s *Server) apiSuppress(w http.ResponseWriter, r *http.Request) {
	sb, err := s.suppressions()
	if err != nil {
		s.Error(w, r, err)
		return
	}
	p := principalFrom(r.Context())
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	// Only types a cross-site form cannot send without a preflight: the
	// API does not rely on CrossOriginProtection alone.
	if ct == "text/csv" {
		r.Body = http.MaxBytesReader(w, r.Body, maxImportBytes)
		source := "api"
		if name := r.URL.Query().Get("name"); name != "" {
			source = "api: " + noteText(name)
		}
		entry := campaignd.Suppression{Reason: campaignd.SuppressImport, Source: source, At: s.o.Now(), By: p.User}
		res, err := sb.ImportSuppressions(r.Context(), r.Body, entry, s.suppressAudit(r, "import", source))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				err = campaignd.Errorf(campaignd.EINVALID, "The list is over %d MB: split it.", maxImportBytes>>20)
			}
			s.Error(w, r, err)
			return
		}
		if res.Errors == nil {
			res.Errors = []campaignd.FileError{}
		}
		s.writeJSON(w, r, http.StatusOK, res)
		return
	}
	if ct != "application/json" {
		s.Error(w, r, campaignd.Errorf(campaignd.EINVALID, "Send JSON (application/json) or a list of numbers (text/csv), not %s.", ct))
		return
	}
	var req apiSuppressRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSuppressJSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.Error(w, r, campaignd.Errorf(campaignd.EINVALID, "Invalid JSON: %s. Send {\"number\": \"5512345678\"} or {\"numbers\": [...]}.", jsonErrText(err)))
		return
	}
	raws := req.Numbers
	if req.Number != "" {
		raws = append([]string{req.Number}, raws...)
	}
	if len(raws) == 0 {
		s.Error(w, r, campaignd.Errorf(campaignd.EINVALID, "No number: send {\"number\": \"5512345678\"} or {\"numbers\": [...]}."))
		return
	}
	note := noteText(req.Note)
	now := s.o.Now()
	ss := make([]campaignd.Suppression, 0, len(raws))
	numbers := make([]string, 0, len(raws))
	for _, raw := range raws {
		n, err := sb.NormalizeNumber(raw)
		if err != nil {
			s.Error(w, r, err)
			return
		}
		numbers = append(numbers, n)
		ss = append(ss, campaignd.Suppression{Number: n, Reason: campaignd.SuppressAPI, Source: note, At: now, By: p.User})
	}
	detail := strings.Join(numbers, ", ")
	if len(numbers) > 20 {
		detail = fmt.Sprintf("%s and %d more", strings.Join(numbers[:20], ", "), len(numbers)-20)
	}
	added, err := sb.Suppress(r.Context(), ss, s.suppressAudit(r, "suppress", withNote(detail, note)))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	status := http.StatusOK
	if added > 0 {
		status = http.StatusCreated
	}
	s.writeJSON(w, r, status, struct {
		Added   int      `json:"added"`
		Numbers []string `json:"numbers"`
	}{added, numbers})
}

func jsonErrText(err error) string {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Sprintf("the body is over %d bytes", mbe.Limit)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// apiUnsuppress removes a number; ?reason= is required.
func (s *Server) apiUnsuppress(w http.ResponseWriter, r *http.Request) {
	sb, err := s.suppressions()
	if err != nil {
		s.Error(w, r, err)
		return
	}
	raw, _ := url.PathUnescape(chi.URLParam(r, "number"))
	number, err := sb.NormalizeNumber(raw)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	reason := noteText(r.URL.Query().Get("reason"))
	if reason == "" {
		s.Error(w, r, campaignd.Errorf(campaignd.EINVALID, "Say why %s may be messaged again: ?reason= is required.", number))
		return
	}
	old, err := sb.Unsuppress(r.Context(), number, s.suppressAudit(r, "unsuppress", number+": "+reason))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	old.At = old.At.UTC()
	s.writeJSON(w, r, http.StatusOK, struct {
		Removed *campaignd.Suppression `json:"removed"`
	}{old})
}

// APIReplies is a page of replies.
type APIReplies struct {
	Replies []campaignd.MO `json:"replies"`
	Next    uint64         `json:"next,omitempty"`
}

func (s *Server) apiReplies(w http.ResponseWriter, r *http.Request) {
	sb, err := s.suppressions()
	if err != nil {
		s.Error(w, r, err)
		return
	}
	before, err := replyCursor(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	limit, err := suppressLimit(r, 100)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	list, next, err := sb.MOs(r.Context(), before, limit)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if list == nil {
		list = []campaignd.MO{}
	}
	for i := range list {
		list[i].At = list[i].At.UTC()
	}
	s.writeJSON(w, r, http.StatusOK, APIReplies{Replies: list, Next: next})
}
