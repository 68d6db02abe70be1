package webui

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"campaignd"
)

// APIBroadcast is a broadcast in the JSON API (SPEC §7). Times are RFC 3339
// in UTC; a time that is not set (scheduled_at of a pending broadcast,
// started_at before sending) is null.
type APIBroadcast struct {
	ID          uint64           `json:"id"`
	Name        string           `json:"name"`
	FileName    string           `json:"file_name"`
	Sender      string           `json:"sender"`
	Status      campaignd.Status `json:"status"`
	CreatedAt   Time             `json:"created_at"`
	ScheduledAt Time             `json:"scheduled_at"`
	StartedAt   Time             `json:"started_at"`
	CompletedAt Time             `json:"completed_at"`
	UploadID    uint64           `json:"upload_id,omitempty"`
	Charset     string           `json:"charset,omitempty"`
	Notes       []string         `json:"notes,omitempty"`
	Segments    int64            `json:"segments"`
	Counts      campaignd.Counts `json:"counts"`
	Wait        string           `json:"wait,omitempty"`
	// Validity is the broadcast's validity period as ParseValidity reads
	// it ("2d", "1h30m"); ValidityDefault says it is smpp.validity, the
	// broadcast setting none.
	Validity        string `json:"validity"`
	ValidityDefault bool   `json:"validity_default,omitempty"`
}

// APIUpload is an uploaded file in the JSON API.
type APIUpload struct {
	ID          uint64                `json:"id"`
	User        string                `json:"user"`
	FileName    string                `json:"file_name"`
	Path        string                `json:"path"`
	Size        int64                 `json:"size"`
	SHA256      string                `json:"sha256"`
	RemoteAddr  string                `json:"remote_addr"`
	ReceivedAt  Time                  `json:"received_at"`
	FinishedAt  Time                  `json:"finished_at"`
	Outcome     string                `json:"outcome"`
	BroadcastID uint64                `json:"broadcast_id,omitempty"`
	Errors      []campaignd.FileError `json:"errors"`
	ErrorCount  int                   `json:"error_count"`
	// ErrorsURL pages through every stored error of the upload; Errors
	// holds only the first few.
	ErrorsURL  string `json:"errors_url,omitempty"`
	ResultPath string `json:"result_path,omitempty"`
	Imported   int    `json:"imported,omitempty"` // a list for suppressions/: numbers added
}

// APIReport is a daily report in the JSON API.
type APIReport struct {
	Day         string `json:"date"`
	FileName    string `json:"file_name"`
	Rows        int64  `json:"rows"`
	Bytes       int64  `json:"bytes"`
	SHA256      string `json:"sha256"`
	ProducedAt  Time   `json:"produced_at"`
	Partial     bool   `json:"partial"`
	PushState   string `json:"push_state"`
	PushedAt    Time   `json:"pushed_at"`
	Attempts    int    `json:"attempts"`
	LastError   string `json:"last_error,omitempty"`
	NextAttempt Time   `json:"next_attempt"`
}

// Time is a time in the API: RFC 3339 in UTC, null when not set. It is
// written with time.Format, which cannot fail, so a stored date that
// encoding/json refuses (a year past 9999 UTC) is still shown, never a 500.
type Time struct{ time.Time }

// MarshalJSON writes t as an RFC 3339 string in UTC, or null.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	b := make([]byte, 0, 32)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339)
	return append(b, '"'), nil
}

func jsonTime(t time.Time) Time { return Time{t} }

func (s *Server) toAPIBroadcast(b *campaignd.Broadcast) *APIBroadcast {
	return &APIBroadcast{
		Validity: campaignd.FormatValidity(b.ValidityOr(s.o.DefaultValidity)), ValidityDefault: b.Validity == 0,
		ID: b.ID, Name: b.Name, FileName: b.FileName, Sender: b.Sender, Status: b.Status,
		CreatedAt: jsonTime(b.CreatedAt), ScheduledAt: jsonTime(b.ScheduledAt),
		StartedAt: jsonTime(b.StartedAt), CompletedAt: jsonTime(b.CompletedAt),
		UploadID: b.UploadID, Charset: b.Charset, Notes: b.Notes, Segments: b.Segments,
		Counts: b.Counts, Wait: b.Wait,
	}
}

// toAPIUpload shows an upload with at most maxErrors errors, each cut.
func toAPIUpload(u *campaignd.Upload, maxErrors int) *APIUpload {
	b := boundUpload(u, maxErrors)
	out := &APIUpload{
		ID: b.ID, User: b.User, FileName: b.FileName, Path: b.Path, Size: b.Size, SHA256: b.SHA256,
		RemoteAddr: b.RemoteAddr, ReceivedAt: jsonTime(b.ReceivedAt), FinishedAt: jsonTime(b.FinishedAt),
		Outcome: b.Outcome, BroadcastID: b.BroadcastID, Errors: b.Errors, ErrorCount: b.ErrorCount,
		ResultPath: b.ResultPath, Imported: b.Imported,
	}
	if out.Errors == nil {
		out.Errors = []campaignd.FileError{}
	}
	if b.ErrorCount > 0 {
		out.ErrorsURL = fmt.Sprintf("/api/v1/files/%d/errors", b.ID)
	}
	return out
}

func toAPIReport(r *campaignd.Report) *APIReport {
	return &APIReport{
		Day: r.Day, FileName: r.FileName, Rows: r.Rows, Bytes: r.Bytes, SHA256: r.SHA256,
		ProducedAt: jsonTime(r.ProducedAt), Partial: r.Partial, PushState: r.PushState,
		PushedAt: jsonTime(r.PushedAt), Attempts: r.Attempts, LastError: r.LastError,
		NextAttempt: jsonTime(r.NextAttempt),
	}
}

// parseRange reads ?offset= and ?limit= (default 100, at most 1000).
func parseRange(r *http.Request) (offset, limit int, err error) {
	return parseRangeMax(r, 100, 1000)
}

// parseRangeMax reads ?offset= and ?limit= (default def, at most most).
func parseRangeMax(r *http.Request, def, most int) (offset, limit int, err error) {
	q := r.URL.Query()
	offset, limit = 0, def
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 || offset > 1<<30 {
			return 0, 0, campaignd.Errorf(campaignd.EINVALID, "Invalid offset %q.", v)
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > most {
			return 0, 0, campaignd.Errorf(campaignd.EINVALID, "Invalid limit %q: 1 to %d.", v, most)
		}
	}
	return offset, limit, nil
}

func (s *Server) apiBroadcasts(w http.ResponseWriter, r *http.Request) {
	st, err := parseStatus(r.URL.Query().Get("status"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	offset, limit, err := parseRange(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	list, total, err := s.o.Backend.Broadcasts(r.Context(), st, offset, limit)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := make([]*APIBroadcast, 0, len(list))
	for _, b := range list {
		out = append(out, s.toAPIBroadcast(b))
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Total      int               `json:"total"`
		Offset     int               `json:"offset"`
		Limit      int               `json:"limit"`
		Broadcasts []json.RawMessage `json:"broadcasts"`
	}{total, offset, limit, encodeEach(s, r, out, keyBroadcast, func(b *APIBroadcast) uint64 { return b.ID })})
}

func (s *Server) apiBroadcast(w http.ResponseWriter, r *http.Request) {
	id, err := parseID(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	b, err := s.o.Backend.Broadcast(r.Context(), id)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, s.toAPIBroadcast(b), keyBroadcast, b.ID)
}

// apiAction is POST /broadcasts/{id}/send|schedule|pause|resume|cancel|validity;
// schedule takes {"at": RFC 3339}, validity {"validity": "48h"}, and send
// and schedule may carry a "validity" too.
func (s *Server) apiAction(w http.ResponseWriter, r *http.Request) {
	body, err := readActionBody(w, r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	req, err := s.parseAction(r, actionInput{at: body.parseAt, validity: body.Validity})
	if err != nil {
		s.Error(w, r, err)
		return
	}
	b, err := s.o.Backend.Act(r.Context(), req)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.log.Info("broadcast action", keyUser, req.User, keyRemote, req.RemoteAddr, keyBroadcast, req.BroadcastID, "action", req.Action, "api", true)
	s.writeJSON(w, r, http.StatusOK, s.toAPIBroadcast(b), keyBroadcast, b.ID)
}

// actionBody is the JSON body of an action: {"at": RFC 3339, "validity":
// "48h"}, each optional; an empty body is none.
type actionBody struct {
	At       string `json:"at"`
	Validity string `json:"validity"`
}

func readActionBody(w http.ResponseWriter, r *http.Request) (actionBody, error) {
	var body actionBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		return body, campaignd.Errorf(campaignd.EINVALID, `Body must be {"at": "RFC 3339 time", "validity": "48h"} (each optional).`)
	}
	return body, nil
}

func (body actionBody) parseAt() (time.Time, error) {
	if body.At == "" {
		return time.Time{}, campaignd.Errorf(campaignd.EINVALID, `Missing "at": give the date as RFC 3339, e.g. 2026-05-01T09:00:00-06:00.`)
	}
	t, err := time.Parse(time.RFC3339, body.At)
	if err != nil {
		return time.Time{}, campaignd.Errorf(campaignd.EINVALID, "Invalid date %q: use RFC 3339, e.g. 2026-05-01T09:00:00-06:00.", body.At)
	}
	return t, nil
}

func (s *Server) apiDelete(w http.ResponseWriter, r *http.Request) {
	id, err := parseID(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	p := principalFrom(r.Context())
	req := campaignd.ActionRequest{BroadcastID: id, Action: campaignd.ActionDelete, User: p.User, RemoteAddr: remoteIP(r)}
	if _, err := s.o.Backend.Act(r.Context(), req); err != nil {
		s.Error(w, r, err)
		return
	}
	s.log.Info("broadcast action", keyUser, req.User, keyRemote, req.RemoteAddr, "broadcast_id", id, "action", req.Action, "api", true)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) apiReports(w http.ResponseWriter, r *http.Request) {
	list, err := s.o.Backend.Reports(r.Context())
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := make([]*APIReport, 0, len(list))
	for _, rep := range list {
		out = append(out, toAPIReport(rep))
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Reports []*APIReport `json:"reports"`
	}{out})
}

func (s *Server) apiPush(w http.ResponseWriter, r *http.Request) {
	day, err := s.parseDay(chi.URLParam(r, "day"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	p := principalFrom(r.Context())
	rep, err := s.o.Backend.PushReport(r.Context(), day, p.User, remoteIP(r))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toAPIReport(rep), "day", day)
}
