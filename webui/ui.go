package webui

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"campaignd"
)

const (
	perPage     = 25
	previewRows = 10
)

// listData is the Broadcasts by File page.
type listData struct {
	Status     campaignd.Status
	Statuses   []campaignd.Status
	Broadcasts []*campaignd.Broadcast
	Total      int
	Pager
}

// Pager is one page of a paginated list.
type Pager struct {
	Page, Pages int
	Prev, Next  string // URLs, "" at the ends
	First, Upto int    // 1-based positions shown
}

func newPager(base url.Values, path string, pageNo, total, perPage int) Pager {
	p := Pager{Page: pageNo, Pages: max(1, (total+perPage-1)/perPage)}
	link := func(n int) string {
		q := url.Values{}
		for k, v := range base {
			q[k] = v
		}
		q.Set("page", strconv.Itoa(n))
		return path + "?" + q.Encode()
	}
	if pageNo > 1 {
		p.Prev = link(pageNo - 1)
	}
	if pageNo < p.Pages {
		p.Next = link(pageNo + 1)
	}
	if total > 0 {
		p.First = (pageNo-1)*perPage + 1
		p.Upto = min(total, pageNo*perPage)
	}
	return p
}

func parsePage(r *http.Request) (int, error) {
	v := r.URL.Query().Get("page")
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1_000_000 {
		return 0, campaignd.Errorf(campaignd.EINVALID, "Invalid page %q.", v)
	}
	return n, nil
}

func parseStatus(v string) (campaignd.Status, error) {
	st := campaignd.Status(v)
	if v != "" && !st.Valid() {
		return "", campaignd.Errorf(campaignd.EINVALID, "Unknown status %q.", v)
	}
	return st, nil
}

func parseID(r *http.Request) (uint64, error) {
	v := chi.URLParam(r, "id")
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil || id == 0 {
		return 0, campaignd.Errorf(campaignd.ENOTFOUND, "No broadcast %q.", v)
	}
	return id, nil
}

func (s *Server) handleBroadcasts(w http.ResponseWriter, r *http.Request) {
	st, err := parseStatus(r.URL.Query().Get("status"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	n, err := parsePage(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	list, total, err := s.o.Backend.Broadcasts(r.Context(), st, (n-1)*perPage, perPage)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	q := url.Values{}
	if st != "" {
		q.Set("status", string(st))
	}
	d := listData{Status: st, Statuses: campaignd.Statuses, Broadcasts: list, Total: total, Pager: newPager(q, "/broadcasts", n, total, perPage)}
	s.renderPage(w, r, http.StatusOK, "broadcasts", &page{Title: s.loc(r).T("Broadcasts by File"), Nav: "broadcasts", Data: d})
}

// handleRow renders one row of the list, polled while it is sending.
func (s *Server) handleRow(w http.ResponseWriter, r *http.Request) {
	id, err := parseID(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	b, err := s.o.Backend.Broadcast(r.Context(), id)
	if campaignd.ErrorCode(err) == campaignd.ENOTFOUND {
		// Deleted meanwhile: the empty answer removes the row, which stops
		// its polling.
		w.WriteHeader(http.StatusOK)
		return
	} else if err != nil {
		s.Error(w, r, err)
		return
	}
	s.renderFragment(w, r, http.StatusOK, "broadcasts", "row", b)
}

// detail is a broadcast's page; the panel is the part that changes with
// its status and is swapped by actions and polling.
type detail struct {
	B        *campaignd.Broadcast
	Rate     float64
	ETA      time.Duration
	MinInput string // earliest value for the date field
	MaxInput string // latest: campaignd.MaxScheduleAhead from now
	Preview  []previewRow
	Upload   *campaignd.Upload
	Audit    []campaignd.AuditEntry
	Deleted  bool
	// AuditChanged marks a polled panel whose audit trail grew since the
	// page was drawn: the trail is swapped too.
	AuditChanged bool
	// Breakdown splits the failed messages by final status and SMPP
	// error code (settled broadcasts only).
	Breakdown []breakdownRow
	Chart     *chart // submitted and settled over time (settled broadcasts)
	Binds     string // "transceiver#1 bound, transceiver#2 not bound", while sending or paused
}

type previewRow struct {
	*campaignd.Message
	Chars int
	Units int
}

// Remaining is how many messages are still to be submitted.
func (d *detail) Remaining() int64 { return d.B.Counts.Queued }

// Processed is how many messages left the queue (submitted, settled or
// cancelled), for the progress bar.
func (d *detail) Processed() int64 { return d.B.Counts.Total - d.B.Counts.Queued }

// Polling reports whether the panel refreshes itself: while its state can
// change on its own — scheduled (the timer fires), sending, paused
// (receipts keep coming), and completed or cancelled while receipts are
// still awaited or a cancel is still settling the queue.
func (d *detail) Polling() bool {
	if d.Deleted {
		return false
	}
	switch d.B.Status {
	case campaignd.StatusScheduled, campaignd.StatusSending, campaignd.StatusPaused:
		return true
	case campaignd.StatusCompleted, campaignd.StatusCancelled:
		return d.B.Counts.Submitted > 0 || d.B.Counts.Queued > 0
	}
	return false
}

func (s *Server) detail(r *http.Request, b *campaignd.Broadcast) *detail {
	now := s.o.Now().In(s.o.Location)
	d := &detail{B: b, MinInput: now.Add(time.Minute).Format(inputLayout),
		MaxInput: now.Add(campaignd.MaxScheduleAhead).Format(inputLayout)}
	d.Rate, d.ETA = s.o.Backend.Progress(b.ID)
	if b.Status == campaignd.StatusSending || b.Status == campaignd.StatusPaused {
		d.Binds = smscBinds(s.o.Backend.Ready(r.Context()))
	}
	return d
}

// smscBinds lists the SMSC binds of a readiness detail ("smsc_<bind>": state), in order.
func smscBinds(_ bool, detail map[string]string) string {
	var out []string
	for k, v := range detail {
		if name, ok := strings.CutPrefix(k, "smsc_"); ok {
			out = append(out, name+" "+v)
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

func (s *Server) handleBroadcast(w http.ResponseWriter, r *http.Request) {
	id, err := parseID(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	ctx := r.Context()
	b, err := s.o.Backend.Broadcast(ctx, id)
	if campaignd.ErrorCode(err) == campaignd.ENOTFOUND {
		s.handleTombstone(w, r, id, err)
		return
	} else if err != nil {
		s.Error(w, r, err)
		return
	}
	d := s.detail(r, b)
	msgs, err := s.o.Backend.Preview(ctx, id, previewRows)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	for _, m := range msgs {
		_, units, _ := campaignd.AnalyzeText(m.Text)
		d.Preview = append(d.Preview, previewRow{Message: m, Chars: utf8.RuneCountInString(m.Text), Units: units})
	}
	if b.UploadID != 0 {
		if d.Upload, err = s.o.Backend.Upload(ctx, b.UploadID, skippedErrors); err != nil && campaignd.ErrorCode(err) != campaignd.ENOTFOUND {
			s.Error(w, r, err)
			return
		}
		if d.Upload != nil {
			d.Upload = boundUpload(d.Upload, skippedErrors)
		}
	}
	if d.Audit, err = s.o.Backend.AuditLog(ctx, id); err != nil {
		s.Error(w, r, err)
		return
	}
	if d.Breakdown, d.Chart, err = s.breakdown(ctx, b); err != nil {
		s.log.Warn("results breakdown", keyBroadcast, id, slog.Any(keyError, err))
	}
	s.renderPage(w, r, http.StatusOK, "broadcast", &page{Title: b.Name, Nav: "broadcasts", Data: d})
}

// handlePanel renders the live part of a broadcast's page (polled).
func (s *Server) handlePanel(w http.ResponseWriter, r *http.Request) {
	id, err := parseID(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	b, err := s.o.Backend.Broadcast(r.Context(), id)
	if campaignd.ErrorCode(err) == campaignd.ENOTFOUND {
		// Deleted meanwhile: a panel without polling says so.
		s.renderFragment(w, r, http.StatusOK, "broadcast", "gone", nil)
		return
	} else if err != nil {
		s.Error(w, r, err)
		return
	}
	d := s.detail(r, b)
	if d.Audit, err = s.o.Backend.AuditLog(r.Context(), id); err != nil {
		s.Error(w, r, err)
		return
	}
	if seen, err := strconv.Atoi(r.URL.Query().Get("audit")); err == nil && seen != len(d.Audit) {
		d.AuditChanged = true
	}
	s.renderFragment(w, r, http.StatusOK, "broadcast", "polled", s.fill(r, &page{Data: d}))
}

// actions are the operator actions the console and the API accept by name.
var actions = map[string]campaignd.Action{
	"send": campaignd.ActionSend, "schedule": campaignd.ActionSchedule, "pause": campaignd.ActionPause,
	"resume": campaignd.ActionResume, "cancel": campaignd.ActionCancel, "delete": campaignd.ActionDelete,
	"validity": campaignd.ActionValidity,
}

// parseInputTime reads a date and time as people write it (dd/mm/yyyy
// hh:mm, a single-digit day, month or hour allowed) or in ISO form, in the
// console's time zone.
func (s *Server) parseInputTime(v string) (time.Time, error) {
	v = strings.Join(strings.Fields(v), " ")
	if v == "" {
		return time.Time{}, campaignd.Errorf(campaignd.EINVALID, "Choose a date and time.")
	}
	for _, layout := range []string{"2/1/2006 15:04", "2/1/2006 15:04:05", "2-1-2006 15:04", inputLayout,
		"2006-01-02T15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, v, s.o.Location); err == nil {
			return t, nil
		}
	}
	return time.Time{}, campaignd.Errorf(campaignd.EINVALID, "Invalid date %q: write it as dd/mm/yyyy hh:mm (24-hour clock), e.g. %s.",
		v, s.o.Now().In(s.o.Location).Add(24*time.Hour).Format("02/01/2006")+" 09:30")
}

// checkFuture refuses dates that are not in the future.
func (s *Server) checkFuture(t time.Time) error {
	if !t.After(s.o.Now()) {
		return campaignd.Errorf(campaignd.EINVALID, "The date %s is not in the future.",
			t.In(s.o.Location).Format("02/01/2006 15:04"))
	}
	return nil
}

func (s *Server) handleAction(w http.ResponseWriter, r *http.Request) {
	req, err := s.parseAction(r, actionInput{
		at:       func() (time.Time, error) { return s.parseInputTime(r.PostFormValue("at")) },
		validity: r.PostFormValue("validity"),
	})
	if err != nil {
		s.Error(w, r, err)
		return
	}
	b, err := s.o.Backend.Act(r.Context(), req)
	if campaignd.ErrorCode(err) == campaignd.ECONFLICT && isHTMX(r) {
		s.staleAction(w, r, req, err)
		return
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.log.Info("broadcast action", keyUser, req.User, keyRemote, req.RemoteAddr, "broadcast_id", req.BroadcastID, "action", req.Action)
	if !isHTMX(r) {
		to := fmt.Sprintf("/broadcasts/%d", req.BroadcastID)
		if req.Action == campaignd.ActionDelete {
			to = "/broadcasts"
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	d := s.detail(r, b)
	d.Deleted = req.Action == campaignd.ActionDelete
	if d.Audit, err = s.o.Backend.AuditLog(r.Context(), req.BroadcastID); err != nil {
		s.log.Warn("audit log after action", "broadcast_id", req.BroadcastID, slog.Any(keyError, err))
	}
	p := s.fill(r, &page{Data: d, Flash: &flash{Text: s.actionDone(r, req, b)}})
	s.renderFragment(w, r, http.StatusOK, "broadcast", "acted", p)
}

// staleAction answers an action refused because the broadcast moved on
// since the page was drawn (its timer fired, it completed, someone else
// acted): a message that says so, and the fresh panel and trail in place.
func (s *Server) staleAction(w http.ResponseWriter, r *http.Request, req campaignd.ActionRequest, cause error) {
	b, err := s.o.Backend.Broadcast(r.Context(), req.BroadcastID)
	if err != nil {
		s.Error(w, r, cause)
		return
	}
	d := s.detail(r, b)
	if d.Audit, err = s.o.Backend.AuditLog(r.Context(), req.BroadcastID); err != nil {
		s.log.Warn("audit log after refused action", "broadcast_id", req.BroadcastID, slog.Any(keyError, err))
	}
	l := s.loc(r)
	text := l.T("This page was out of date: the broadcast is now %s, so it cannot be %s. Its current state is shown below.",
		l.T(string(b.Status)), l.T(pastParticiple[req.Action]))
	p := s.fill(r, &page{Data: d, Flash: &flash{Error: true, Text: text}})
	s.renderFragment(w, r, http.StatusConflict, "broadcast", "acted", p)
}

// pastParticiple names what an action does to a broadcast, for messages.
var pastParticiple = map[campaignd.Action]string{
	campaignd.ActionSend: "sent", campaignd.ActionSchedule: "scheduled", campaignd.ActionPause: "paused",
	campaignd.ActionResume: "resumed", campaignd.ActionCancel: "cancelled", campaignd.ActionDelete: "deleted",
	campaignd.ActionValidity: "changed",
}

// actionInput is what an action request carries besides its name: how to
// read the date of a schedule, and a validity period as written ("" for
// none).
type actionInput struct {
	at       func() (time.Time, error)
	validity string
}

// parseAction reads an action request: the date of a schedule, and the
// validity period of a validity action (or of a send or schedule that
// gives one), checked against its bounds before anything is asked.
func (s *Server) parseAction(r *http.Request, in actionInput) (campaignd.ActionRequest, error) {
	id, err := parseID(r)
	if err != nil {
		return campaignd.ActionRequest{}, err
	}
	a, ok := actions[chi.URLParam(r, "action")]
	if !ok || (isAPI(r) && a == campaignd.ActionDelete) {
		return campaignd.ActionRequest{}, campaignd.Errorf(campaignd.ENOTFOUND, "No action %q.", chi.URLParam(r, "action"))
	}
	p := principalFrom(r.Context())
	req := campaignd.ActionRequest{BroadcastID: id, Action: a, User: p.User, RemoteAddr: remoteIP(r)}
	if a == campaignd.ActionSchedule {
		if req.At, err = in.at(); err != nil {
			return req, err
		}
		if err := s.checkFuture(req.At); err != nil {
			return req, err
		}
	}
	switch {
	case strings.TrimSpace(in.validity) != "":
		if req.Validity, err = campaignd.ParseValidity(in.validity); err != nil {
			return req, err
		}
	case a == campaignd.ActionValidity:
		return req, campaignd.Errorf(campaignd.EINVALID, "Missing validity: write a duration such as %s.", campaignd.ValidityHint)
	}
	return req, nil
}

func (s *Server) actionDone(r *http.Request, req campaignd.ActionRequest, b *campaignd.Broadcast) string {
	l := s.loc(r)
	switch req.Action {
	case campaignd.ActionSend:
		return l.T("Sending started.")
	case campaignd.ActionSchedule:
		return l.T("Scheduled for %s.", l.When(req.At, s.o.Location, false))
	case campaignd.ActionPause:
		return l.T("Paused: no new messages are submitted.")
	case campaignd.ActionResume:
		return l.T("Resumed.")
	case campaignd.ActionCancel:
		return l.T("Cancelled: the unsent messages will not be sent.")
	case campaignd.ActionDelete:
		return l.T("Broadcast “%s” deleted.", b.Name)
	case campaignd.ActionValidity:
		return l.T("Validity set to %s: each message may be delivered up to %s after it is sent.",
			campaignd.FormatValidity(b.Validity), campaignd.FormatValidity(b.Validity))
	}
	return l.T("Done.")
}
