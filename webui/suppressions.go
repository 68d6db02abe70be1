package webui

import (
	"context"
	"crypto/subtle"
	"encoding/csv"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"campaignd"
)

// SuppressionBackend is the suppression list and the replies (SPEC §11),
// for the console's Opt-outs and Replies pages and the API. The Backend
// may implement it (cmd's does), or Options.Suppressions gives it.
type SuppressionBackend interface {
	// NormalizeNumber normalises a number as recipients are at ingest, or
	// returns an EINVALID error naming it.
	NormalizeNumber(raw string) (string, error)
	// Suppressions returns up to limit entries whose number starts with
	// prefix, in number order after `after`, the cursor of the next page
	// ("" on the last) and how many numbers the whole list holds.
	Suppressions(ctx context.Context, prefix, after string, limit int) (list []campaignd.Suppression, next string, total int, err error)
	// Suppress puts numbers (normalised) on the list and records a.
	Suppress(ctx context.Context, ss []campaignd.Suppression, a campaignd.AuditEntry) (added int, err error)
	// ImportSuppressions reads a list of numbers (one a line or a CSV,
	// header optional), suppresses every valid one like entry, and records
	// a with the counts. A list without a valid number is EINVALID.
	ImportSuppressions(ctx context.Context, r io.Reader, entry campaignd.Suppression, a campaignd.AuditEntry) (*SuppressImport, error)
	// Unsuppress takes a number off the list and records a; ENOTFOUND
	// when it is not listed.
	Unsuppress(ctx context.Context, number string, a campaignd.AuditEntry) (*campaignd.Suppression, error)
	// MOs returns up to limit replies, newest first, older than the reply
	// `before` (0: the newest), and the cursor of the next page (0: none).
	MOs(ctx context.Context, before uint64, limit int) ([]campaignd.MO, uint64, error)
	// SuppressionAudit returns the latest changes to the list, newest first.
	SuppressionAudit(ctx context.Context, limit int) ([]campaignd.AuditEntry, error)
}

// SuppressImport is what an import of a list did.
type SuppressImport struct {
	Added   int                   `json:"added"`   // numbers new to the list
	Valid   int                   `json:"valid"`   // valid numbers read (each once)
	Invalid int                   `json:"invalid"` // lines without a valid number
	Errors  []campaignd.FileError `json:"errors"`  // the first invalid lines
}

const (
	suppressPerPage   = 50
	maxImportBytes    = 32 << 20 // a list of ~2.5 million numbers
	maxSuppressJSON   = 1 << 20
	suppressAuditRows = 20
)

// suppressions returns the suppression backend, or an error when there is
// none (the list is off).
func (s *Server) suppressions() (SuppressionBackend, error) {
	if s.o.Suppressions != nil {
		return s.o.Suppressions, nil
	}
	if sb, ok := s.o.Backend.(SuppressionBackend); ok {
		return sb, nil
	}
	return nil, campaignd.Errorf(campaignd.ENOTFOUND, "The suppression list is not available.")
}

// suppressionsRoutes adds the console's pages; called inside the session
// and CSRF group, act routes inside requireAct.
func (s *Server) suppressionsRoutes(r chi.Router) {
	r.Get("/suppressions", s.handleSuppressions)
	r.Get("/suppressions/export.csv", s.handleSuppressionsCSV)
	r.Get("/replies", s.handleReplies)
}

func (s *Server) suppressionsActRoutes(r chi.Router) {
	r.Post("/suppressions", s.handleSuppressAdd)
	r.Post("/suppressions/remove", s.handleSuppressRemove)
}

// suppressionsImportRoute is the console's import: a multipart upload
// larger than the CSRF middleware's 64 KB body cap, so it checks the
// session's token itself (importCSRFOK) after reading the form.
func (s *Server) suppressionsImportRoute(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(s.requireSession, s.requireAct)
		r.Post("/suppressions/import", s.handleSuppressImport)
	})
}

func (s *Server) suppressionsAPIRoutes(r chi.Router) {
	r.Get("/suppressions", s.apiSuppressions)
	r.Get("/suppressions.csv", s.handleSuppressionsCSV)
	r.Get("/replies", s.apiReplies)
}

func (s *Server) suppressionsAPIActRoutes(r chi.Router) {
	r.Post("/suppressions", s.apiSuppress)
	r.Delete("/suppressions/{number}", s.apiUnsuppress)
}

// audit is an audit entry for the request's user (BroadcastID 0: the list).
func (s *Server) suppressAudit(r *http.Request, action, detail string) campaignd.AuditEntry {
	p := principalFrom(r.Context())
	return campaignd.AuditEntry{At: s.o.Now(), User: p.User, RemoteAddr: remoteIP(r), Action: action, Detail: detail}
}

// ---- the console ----

type suppressionsData struct {
	Query   string
	List    []campaignd.Suppression
	Total   int64
	Next    string // URL of the next page, "" on the last
	First   string // URL of the first page, "" on it
	Audit   []campaignd.AuditEntry
	Import  *SuppressImport
	Reasons []string
}

func (s *Server) suppressionsData(r *http.Request, q, after string) (*suppressionsData, error) {
	sb, err := s.suppressions()
	if err != nil {
		return nil, err
	}
	prefix := suppressPrefix(sb, q)
	list, next, total, err := sb.Suppressions(r.Context(), prefix, after, suppressPerPage)
	if err != nil {
		return nil, err
	}
	d := &suppressionsData{Query: q, List: list, Total: int64(total)}
	if next != "" {
		v := url.Values{"after": {next}}
		if q != "" {
			v.Set("q", q)
		}
		d.Next = "/suppressions?" + v.Encode()
	}
	if after != "" {
		d.First = "/suppressions"
		if q != "" {
			d.First += "?" + url.Values{"q": {q}}.Encode()
		}
	}
	if d.Audit, err = sb.SuppressionAudit(r.Context(), suppressAuditRows); err != nil {
		return nil, err
	}
	return d, nil
}

// suppressPrefix turns a search into a prefix of stored (normalised)
// numbers: a whole number is normalised ("55 1234 5678" → 525512345678);
// a beginning keeps its digits, with 52 in front unless it starts with 52
// or '+' ("55 12" → 525512, "+1 415" → 1415).
func suppressPrefix(sb SuppressionBackend, q string) string {
	q = strings.TrimSpace(q)
	if q == "" {
		return ""
	}
	if n, err := sb.NormalizeNumber(q); err == nil {
		return n
	}
	var b strings.Builder
	for _, c := range q {
		if c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	d := b.String()
	if d == "" || strings.HasPrefix(q, "+") || strings.HasPrefix(d, "52") {
		return d
	}
	return "52" + d
}

func (s *Server) renderSuppressions(w http.ResponseWriter, r *http.Request, status int, d *suppressionsData, f *flash) {
	s.renderPage(w, r, status, "suppressions", &page{Title: s.loc(r).T("Opt-outs"), Nav: "suppressions", Data: d, Flash: f})
}

func (s *Server) handleSuppressions(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	d, err := s.suppressionsData(r, q, r.URL.Query().Get("after"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.renderSuppressions(w, r, http.StatusOK, d, nil)
}

// afterChange renders the list again with a flash: a plain form post gets
// the page back, so the operator sees the result in place.
func (s *Server) afterChange(w http.ResponseWriter, r *http.Request, text string, imp *SuppressImport) {
	d, err := s.suppressionsData(r, "", "")
	if err != nil {
		s.Error(w, r, err)
		return
	}
	d.Import = imp
	s.renderSuppressions(w, r, http.StatusOK, d, &flash{Text: text})
}

func (s *Server) handleSuppressAdd(w http.ResponseWriter, r *http.Request) {
	sb, err := s.suppressions()
	if err != nil {
		s.Error(w, r, err)
		return
	}
	number, err := sb.NormalizeNumber(r.PostFormValue("number"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	note := noteText(r.PostFormValue("note"))
	p := principalFrom(r.Context())
	entry := campaignd.Suppression{Number: number, Reason: campaignd.SuppressOperator, Source: note, At: s.o.Now(), By: p.User}
	added, err := sb.Suppress(r.Context(), []campaignd.Suppression{entry}, s.suppressAudit(r, "suppress", withNote(number, note)))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.log.Info("number suppressed", keyUser, p.User, keyRemote, remoteIP(r), "number", number, "added", added == 1)
	text := s.loc(r).T("%s is on the suppression list: it will not be messaged.", number)
	if added == 0 {
		text = s.loc(r).T("%s was already on the suppression list.", number)
	}
	s.afterChange(w, r, text, nil)
}

func (s *Server) handleSuppressRemove(w http.ResponseWriter, r *http.Request) {
	sb, err := s.suppressions()
	if err != nil {
		s.Error(w, r, err)
		return
	}
	number, err := sb.NormalizeNumber(r.PostFormValue("number"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	reason := noteText(r.PostFormValue("reason"))
	if reason == "" {
		s.Error(w, r, campaignd.Errorf(campaignd.EINVALID, "Say why %s may be messaged again: a reason is required.", number))
		return
	}
	if _, err := sb.Unsuppress(r.Context(), number, s.suppressAudit(r, "unsuppress", number+": "+reason)); err != nil {
		s.Error(w, r, err)
		return
	}
	s.log.Info("number unsuppressed", keyUser, principalFrom(r.Context()).User, keyRemote, remoteIP(r), "number", number)
	s.afterChange(w, r, s.loc(r).T("%s was removed from the suppression list: it may be messaged again.", number), nil)
}

func (s *Server) handleSuppressImport(w http.ResponseWriter, r *http.Request) {
	sb, err := s.suppressions()
	if err != nil {
		s.Error(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxImportBytes)
	mr, err := r.MultipartReader()
	if err != nil {
		s.Error(w, r, campaignd.Errorf(campaignd.EINVALID, "Choose a CSV file of numbers to import."))
		return
	}
	// The token comes first in the form (the template puts it there), so
	// the file is streamed, never held, and never read before the check.
	token := r.Header.Get("X-CSRF-Token")
	var res *SuppressImport
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			s.Error(w, r, campaignd.Errorf(campaignd.EINVALID, "The upload was cut off or is over %d MB.", maxImportBytes>>20))
			return
		}
		switch part.FormName() {
		case "csrf":
			b, _ := io.ReadAll(io.LimitReader(part, 256))
			token = string(b)
		case "file":
			if !s.importCSRFOK(r, token) {
				s.Error(w, r, errImportCSRF)
				return
			}
			name := part.FileName()
			p := principalFrom(r.Context())
			entry := campaignd.Suppression{Reason: campaignd.SuppressImport, Source: "console: " + name, At: s.o.Now(), By: p.User}
			if res, err = sb.ImportSuppressions(r.Context(), part, entry, s.suppressAudit(r, "import", name)); err != nil {
				s.Error(w, r, err)
				return
			}
		}
		part.Close()
		if res != nil {
			break // one file a request: later parts are not read
		}
	}
	if res == nil {
		if !s.importCSRFOK(r, token) {
			s.Error(w, r, errImportCSRF)
			return
		}
		s.Error(w, r, campaignd.Errorf(campaignd.EINVALID, "Choose a CSV file of numbers to import."))
		return
	}
	s.afterChange(w, r, s.loc(r).T("Imported: %d numbers added to the list, %d already on it, %d invalid lines.",
		res.Added, res.Valid-res.Added, res.Invalid), res)
}

var errImportCSRF = campaignd.Errorf(campaignd.EFORBIDDEN, "Missing or invalid CSRF token. Reload the page and try again.")

// importCSRFOK compares token with the session's, as requireCSRF does.
func (s *Server) importCSRFOK(r *http.Request, token string) bool {
	p := principalFrom(r.Context())
	if p == nil || p.Session == nil {
		return false
	}
	want := p.Session.CSRFToken
	return token != "" && want != "" && subtle.ConstantTimeCompare([]byte(token), []byte(want)) == 1
}

// SuppressionsHeader is the header of the list's CSV export.
var SuppressionsHeader = []string{"Number", "Reason", "Source", "Suppressed At", "By"}

// handleSuppressionsCSV streams the whole list (or the numbers starting
// with ?q=) as CSV, every value through campaignd.SafeCSV.
func (s *Server) handleSuppressionsCSV(w http.ResponseWriter, r *http.Request) {
	sb, err := s.suppressions()
	if err != nil {
		s.Error(w, r, err)
		return
	}
	prefix := suppressPrefix(sb, r.URL.Query().Get("q"))
	lw := &lazyWriter{w: w, onFirst: func() { setCSVHeaders(w, "suppressions.csv") }}
	cw := csv.NewWriter(lw)
	cw.Write(SuppressionsHeader)
	after := ""
	for {
		list, next, _, err := sb.Suppressions(r.Context(), prefix, after, 1000)
		if err != nil {
			if !lw.started {
				s.Error(w, r, err)
				return
			}
			s.log.Error("suppressions export broken off", slog.Any(keyError, err))
			panic(http.ErrAbortHandler)
		}
		for _, e := range list {
			cw.Write([]string{campaignd.SafeCSV(e.Number), e.Reason, campaignd.SafeCSV(e.Source),
				s.csvTime(e.At), campaignd.SafeCSV(e.By)})
		}
		cw.Flush()
		if next == "" {
			break
		}
		after = next
	}
	if err := cw.Error(); err != nil {
		s.log.Error("suppressions export", slog.Any(keyError, err))
	}
}

type repliesData struct {
	List  []campaignd.MO
	Next  string
	First string
}

func replyCursor(r *http.Request) (uint64, error) {
	v := r.URL.Query().Get("before")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, campaignd.Errorf(campaignd.EINVALID, "Invalid cursor %q.", v)
	}
	return n, nil
}

func (s *Server) handleReplies(w http.ResponseWriter, r *http.Request) {
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
	list, next, err := sb.MOs(r.Context(), before, suppressPerPage)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	d := &repliesData{List: list}
	if next != 0 {
		d.Next = "/replies?before=" + strconv.FormatUint(next, 10)
	}
	if before != 0 {
		d.First = "/replies"
	}
	s.renderPage(w, r, http.StatusOK, "replies", &page{Title: s.loc(r).T("Replies"), Nav: "replies", Data: d})
}

// noteText trims a note and keeps it to one line of at most 200 characters.
func noteText(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200])
	}
	return s
}

func withNote(number, note string) string {
	if note == "" {
		return number
	}
	return number + ": " + note
}
