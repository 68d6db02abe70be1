package webui

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"campaignd"
)

// errThrottled is returned while logins are locked for a user or an address.
type errThrottled struct{ retry time.Duration }

func (e *errThrottled) Error() string {
	return "Too many failed logins. Try again in " + humanDuration(e.retry) + "."
}

// errMethod is a request whose path is routed, but not for its method.
type errMethod struct {
	method string
	allow  []string
}

func (e *errMethod) Error() string {
	return "Method " + e.method + " is not allowed here; use " + strings.Join(e.allow, ", ") + "."
}

// httpStatus maps campaignd error codes to HTTP statuses: the one place
// where this mapping is made.
func httpStatus(err error) int {
	var t *errThrottled
	if errors.As(err, &t) {
		return http.StatusTooManyRequests
	}
	var m *errMethod
	if errors.As(err, &m) {
		return http.StatusMethodNotAllowed
	}
	switch campaignd.ErrorCode(err) {
	case campaignd.EINVALID:
		return http.StatusBadRequest
	case campaignd.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case campaignd.EFORBIDDEN:
		return http.StatusForbidden
	case campaignd.ENOTFOUND:
		return http.StatusNotFound
	case campaignd.ECONFLICT:
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// errorMessage is the text users see for err; internals never leak.
func errorMessage(err error) string {
	var t *errThrottled
	if errors.As(err, &t) {
		return t.Error()
	}
	var m *errMethod
	if errors.As(err, &m) {
		return m.Error()
	}
	return campaignd.ErrorMessage(err)
}

// Error answers a request that failed, in the request's own language: JSON
// for the API, an error fragment swapped into the page's flash area for
// htmx, an error page otherwise. Internal errors are logged.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	status := httpStatus(err)
	msg := errorMessage(err)
	if !isAPI(r) {
		msg = s.loc(r).Msg(msg)
	}
	if status == http.StatusInternalServerError {
		s.log.Error("request failed", keyMethod, r.Method, keyPath, r.URL.Path, slog.Any(keyError, err))
	}
	var t *errThrottled
	if errors.As(err, &t) {
		w.Header().Set("Retry-After", strconv.Itoa(int(t.retry.Seconds()+0.999)))
	}
	var m *errMethod
	if errors.As(err, &m) {
		w.Header().Set("Allow", strings.Join(m.allow, ", "))
	}
	switch {
	case isAPI(r):
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="campaignd", charset="UTF-8"`)
		}
		s.writeJSON(w, r, status, map[string]string{"error": msg})
	case isHTMX(r):
		if status == http.StatusUnauthorized {
			// The session ended: send the browser to the login page.
			w.Header().Set("HX-Redirect", "/login")
		}
		// htmx 4 swaps error responses; send them to the flash area rather
		// than into the element that asked.
		w.Header().Set("HX-Retarget", "#flash")
		w.Header().Set("HX-Reswap", "innerHTML")
		s.renderFragment(w, r, status, "error", "flash", &flash{Error: true, Text: msg})
	default:
		if status == http.StatusUnauthorized {
			http.Redirect(w, r, loginURL(r), http.StatusSeeOther)
			return
		}
		s.renderPage(w, r, status, "error", &page{Title: s.loc(r).T(http.StatusText(status)), Data: errorPage{Status: status, Message: msg}})
	}
}

type errorPage struct {
	Status  int
	Message string
}

func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

func isHTMX(r *http.Request) bool { return r.Header.Get("HX-Request") == "true" }

// errNotShown is what users read when an item cannot be encoded: the
// details are in the log, with the item's id.
const errNotShown = "This item could not be shown; the failure is logged with its id."

// writeJSON encodes v, then writes it with status. An encoding failure is
// logged with attrs (the id of the broadcast or upload being shown) and
// answered as a 500 that names no internals.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any, attrs ...any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		s.log.Error("encode JSON", append([]any{keyMethod, r.Method, keyPath, r.URL.Path, slog.Any(keyError, err)}, attrs...)...)
		status = http.StatusInternalServerError
		b, _ = json.Marshal(map[string]string{"error": errNotShown})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// encodeEach encodes the items of a list one by one, so that one item that
// cannot be encoded is logged with its id and shown as {"id", "error"}
// instead of failing the whole list (and every page that shows it).
func encodeEach[T any](s *Server, r *http.Request, items []T, idKey string, id func(T) uint64) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(items))
	for _, it := range items {
		b, err := json.Marshal(it)
		if err != nil {
			s.log.Error("encode JSON", keyPath, r.URL.Path, idKey, id(it), slog.Any(keyError, err))
			b, _ = json.Marshal(struct {
				ID    uint64 `json:"id"`
				Error string `json:"error"`
			}{id(it), errNotShown})
		}
		out = append(out, b)
	}
	return out
}
