package webui

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"campaignd"
)

// AuditFilter selects audit entries for the Audit page and the API: of one
// broadcast (BroadcastID > 0), of one user, at or after From and before To
// (zero: unbounded); Limit entries from Offset, newest first.
type AuditFilter struct {
	BroadcastID uint64
	User        string
	From, To    time.Time
	Offset      int
	Limit       int
}

// AuditSearcher searches the whole audit log. A Backend that implements it
// gets the Audit page and GET /api/v1/audit.
type AuditSearcher interface {
	AuditSearch(ctx context.Context, f AuditFilter) ([]campaignd.AuditEntry, int, error)
}

const (
	auditPerPage  = 50
	auditMaxLimit = 1000 // API: most entries per request (default 100)
)

var errAuditRole = campaignd.Errorf(campaignd.EFORBIDDEN, "The audit log is for admins and operators.")

func (s *Server) auditSearcher(r *http.Request) (AuditSearcher, error) {
	if p := principalFrom(r.Context()); p == nil || !p.Role.CanAct() {
		return nil, errAuditRole
	}
	as, ok := s.o.Backend.(AuditSearcher)
	if !ok {
		return nil, campaignd.Errorf(campaignd.ENOTFOUND, "The audit log is not available.")
	}
	return as, nil
}

// parseAuditFilter reads broadcast, user, from and to. from and to are a
// day (YYYY-MM-DD or dd/mm/yyyy, in the console's zone; to includes its
// whole day) or an RFC 3339 time.
func (s *Server) parseAuditFilter(q url.Values) (AuditFilter, error) {
	var f AuditFilter
	if v := strings.TrimSpace(strings.TrimPrefix(q.Get("broadcast"), "#")); v != "" {
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil || id == 0 {
			return f, campaignd.Errorf(campaignd.EINVALID, "Invalid broadcast %q: give its number.", v)
		}
		f.BroadcastID = id
	}
	f.User = strings.TrimSpace(q.Get("user"))
	var err error
	if f.From, err = s.parseAuditTime(q.Get("from"), false); err != nil {
		return f, err
	}
	if f.To, err = s.parseAuditTime(q.Get("to"), true); err != nil {
		return f, err
	}
	return f, nil
}

func (s *Server) parseAuditTime(v string, end bool) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	for _, layout := range []string{time.DateOnly, "2/1/2006"} {
		if d, err := time.ParseInLocation(layout, v, s.o.Location); err == nil {
			if end {
				d = d.AddDate(0, 0, 1)
			}
			return d, nil
		}
	}
	return time.Time{}, campaignd.Errorf(campaignd.EINVALID, "Invalid date %q: write a day as dd/mm/yyyy or YYYY-MM-DD.", v)
}

type auditData struct {
	Entries []campaignd.AuditEntry
	Total   int
	Query   url.Values
	Pager
}

// handleAudit is GET /audit: the whole audit log, filtered, 50 a page.
func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	as, err := s.auditSearcher(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	f, err := s.parseAuditFilter(r.URL.Query())
	if err != nil {
		s.Error(w, r, err)
		return
	}
	n, err := parsePage(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	f.Offset, f.Limit = (n-1)*auditPerPage, auditPerPage
	list, total, err := as.AuditSearch(r.Context(), f)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	q := url.Values{}
	for _, k := range []string{"broadcast", "user", "from", "to"} {
		if v := strings.TrimSpace(r.URL.Query().Get(k)); v != "" {
			q.Set(k, v)
		}
	}
	d := auditData{Entries: list[:min(len(list), auditPerPage)], Total: total, Query: q,
		Pager: newPager(q, "/audit", n, total, auditPerPage)}
	s.renderPage(w, r, http.StatusOK, "audit", &page{Title: s.loc(r).T("Audit log"), Nav: "audit", Data: d})
}

// APIAuditEntry is an audit entry in the API.
type APIAuditEntry struct {
	At          Time   `json:"at"`
	User        string `json:"user"`
	RemoteAddr  string `json:"remote_addr"`
	BroadcastID uint64 `json:"broadcast_id,omitempty"`
	Action      string `json:"action"`
	Detail      string `json:"detail,omitempty"`
}

// apiAudit is GET /api/v1/audit[?broadcast=&user=&from=&to=&offset=&limit=].
func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request) {
	as, err := s.auditSearcher(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	f, err := s.parseAuditFilter(r.URL.Query())
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if f.Offset, f.Limit, err = parseRangeMax(r, 100, auditMaxLimit); err != nil {
		s.Error(w, r, err)
		return
	}
	list, total, err := as.AuditSearch(r.Context(), f)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := make([]APIAuditEntry, 0, min(len(list), f.Limit))
	for _, e := range list[:min(len(list), f.Limit)] {
		out = append(out, APIAuditEntry{Time{e.At}, e.User, e.RemoteAddr, e.BroadcastID, e.Action, e.Detail})
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Total   int             `json:"total"`
		Offset  int             `json:"offset"`
		Limit   int             `json:"limit"`
		Entries []APIAuditEntry `json:"entries"`
	}{total, f.Offset, f.Limit, out})
}

// tombstone is the page of a deleted broadcast: what is known of it, from
// its audit trail.
type tombstone struct {
	ID    uint64
	Audit []campaignd.AuditEntry
}

// handleTombstone answers for a broadcast that is not found: a deleted one
// keeps a page with its trail (410 Gone); one that never existed is a 404.
func (s *Server) handleTombstone(w http.ResponseWriter, r *http.Request, id uint64, notFound error) {
	trail, err := s.o.Backend.AuditLog(r.Context(), id)
	if err != nil || len(trail) == 0 {
		s.Error(w, r, notFound)
		return
	}
	s.renderPage(w, r, http.StatusGone, "tombstone", &page{Title: s.loc(r).T("Broadcast #%d (deleted)", id), Nav: "broadcasts",
		Data: &tombstone{ID: id, Audit: trail}})
}

// handleHelp is GET /help: how the console works, in the user's language.
func (s *Server) handleHelp(w http.ResponseWriter, r *http.Request) {
	s.renderPage(w, r, http.StatusOK, "help", &page{Title: s.loc(r).T("Help"), Nav: "help"})
}
