package webui

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"campaignd"
)

// fakeBackend is an in-memory Backend. Act follows campaignd.Transition,
// and a sending broadcast's counts advance with the wall clock at rate
// messages per second, so a browser sees them move.
type fakeBackend struct {
	mu       sync.Mutex
	rate     float64
	bs       map[uint64]*fakeBroadcast
	uploads  []*campaignd.Upload
	audit    map[uint64][]campaignd.AuditEntry
	reports  []*campaignd.Report
	sessions map[string]*campaignd.Session
	pushes   []string
	ready    bool
	now      func() time.Time
	// slowCancel leaves a cancelled broadcast's queue to be settled later
	// (by edit), as the engine does.
	slowCancel bool
}

type fakeBroadcast struct {
	b        campaignd.Broadcast
	lastTick time.Time
	deleted  bool
}

var fakeNames = []string{"Ana", "Luis", "María", "José", "Lucía", "Carlos", "Sofía", "Jorge", "Elena", "Diego", "Ramón", "Paula"}

// newFake returns a backend holding one broadcast in each status, uploads
// (one rejected) and three days of reports. now is "today" for the data.
func newFake(now time.Time) *fakeBackend {
	f := &fakeBackend{
		rate:     40,
		bs:       map[uint64]*fakeBroadcast{},
		audit:    map[uint64][]campaignd.AuditEntry{},
		sessions: map[string]*campaignd.Session{},
		ready:    true,
		now:      time.Now,
	}
	day := 24 * time.Hour
	add := func(id uint64, name, file string, st campaignd.Status, total int64, created time.Time) *campaignd.Broadcast {
		b := campaignd.Broadcast{
			ID: id, Name: name, FileName: file, Sender: "28776", Status: st, UploadID: id + 100,
			Charset: "UTF-8", CreatedAt: created, TrackingBase: id * 100000, Segments: total,
			Counts: campaignd.Counts{Total: total, Queued: total},
		}
		f.bs[id] = &fakeBroadcast{b: b, lastTick: time.Now()}
		f.uploads = append(f.uploads, &campaignd.Upload{
			ID: id + 100, User: "syniverse", Path: "/" + file, FileName: file, Size: total*64 + 80,
			SHA256: fmt.Sprintf("%064x", id), RemoteAddr: "203.0.113.7", ReceivedAt: created.Add(-2 * time.Second),
			FinishedAt: created, Outcome: campaignd.UploadAccepted, BroadcastID: id,
			ResultPath: "processed/" + file,
		})
		return &f.bs[id].b
	}
	b := add(1, "Puntos Enero", "puntos_enero.csv", campaignd.StatusCompleted, 1200, now.Add(-3*day))
	b.StartedAt, b.CompletedAt = now.Add(-3*day+time.Minute), now.Add(-3*day+20*time.Minute)
	b.Counts = campaignd.Counts{Total: 1200, Invalid: 3, Delivered: 1104, Failed: 61, Unknown: 35}
	b.Segments = 1560
	b = add(2, "Promo Fin de Semana", "promo_fin_semana.csv", campaignd.StatusSending, 50000, now.Add(-2*time.Hour))
	b.StartedAt = now.Add(-time.Hour)
	b.Counts = campaignd.Counts{Total: 50000, Queued: 38000, Submitted: 40, Delivered: 11500, Failed: 440, Unknown: 20}
	b.Segments = 61200
	b = add(3, "Recordatorio Cumpleaños", "cumple_marzo.csv", campaignd.StatusScheduled, 3200, now.Add(-5*time.Hour))
	b.ScheduledAt = now.Add(2 * day).Truncate(time.Hour)
	b = add(4, "Bienvenida Nuevos Socios", "bienvenida.csv", campaignd.StatusPending, 850, now.Add(-time.Hour))
	b.Counts.Invalid, b.Counts.Duplicate = 2, 1
	b.Segments = 1133
	b = add(5, "Doble Puntos", "doble_puntos.csv", campaignd.StatusPaused, 12000, now.Add(-4*time.Hour))
	b.StartedAt = now.Add(-3 * time.Hour)
	b.Counts = campaignd.Counts{Total: 12000, Queued: 7000, Submitted: 12, Delivered: 4800, Failed: 180, Unknown: 8}
	b.Wait = ""
	b = add(6, "Encuesta Satisfacción", "encuesta.csv", campaignd.StatusPending, 400, now.Add(-30*time.Minute))
	b = add(7, "Prueba Cancelada", "prueba.csv", campaignd.StatusCancelled, 900, now.Add(-2*day))
	b.Counts = campaignd.Counts{Total: 900, Delivered: 300, Failed: 10, Cancelled: 590}

	f.uploads[3].Errors = []campaignd.FileError{
		{Line: 14, Column: "telefono", Value: "55-1234", Error: campaignd.RowInvalidRecipient},
		{Line: 203, Column: "telefono", Value: "+1 415 555 0100", Error: campaignd.RowInvalidRecipient},
		{Line: 377, Column: "telefono", Value: "5512345678", Error: campaignd.RowDuplicate, FirstLine: 42},
	}
	f.uploads[3].ErrorCount = 3
	f.uploads = append(f.uploads, &campaignd.Upload{
		ID: 200, User: "syniverse", Path: "/lista_rota.csv", FileName: "lista_rota.csv", Size: 5120,
		SHA256: strings.Repeat("ab", 32), RemoteAddr: "203.0.113.7", ReceivedAt: now.Add(-10 * time.Minute),
		FinishedAt: now.Add(-10 * time.Minute), Outcome: campaignd.UploadRejected, ResultPath: "rejected/lista_rota.csv",
		Errors:     []campaignd.FileError{{Line: 1, Error: "no message column (expected message, text, sms, mensaje or texto)"}},
		ErrorCount: 1,
	})
	sort.Slice(f.uploads, func(i, j int) bool { return f.uploads[i].ReceivedAt.After(f.uploads[j].ReceivedAt) })

	for i := 1; i <= 3; i++ {
		d := now.AddDate(0, 0, -i).Format(time.DateOnly)
		r := &campaignd.Report{Day: d, FileName: "report_" + strings.ReplaceAll(d, "-", "") + ".csv", Rows: int64(1000 * i),
			ProducedAt: now.AddDate(0, 0, -i+1).Truncate(time.Hour), PushState: campaignd.PushDone,
			PushedAt: now.AddDate(0, 0, -i+1).Truncate(time.Hour).Add(time.Minute), Attempts: 1}
		if i == 1 {
			r.PushState, r.PushedAt, r.Attempts = campaignd.PushFailed, time.Time{}, 3
			r.LastError = "dial tcp 198.51.100.20:21: connection refused"
			r.NextAttempt = now.Add(20 * time.Minute)
		}
		f.reports = append(f.reports, r)
	}
	f.audit[1] = []campaignd.AuditEntry{{At: now.Add(-3*day + time.Minute), User: "admin", RemoteAddr: "10.0.0.5", BroadcastID: 1, Action: "send"}}
	return f
}

// advance moves a sending broadcast's counts on with the wall clock.
func (f *fakeBackend) advance(fb *fakeBroadcast) {
	now := time.Now()
	if fb.b.Status != campaignd.StatusSending {
		fb.lastTick = now
		return
	}
	n := int64(now.Sub(fb.lastTick).Seconds() * f.rate)
	if n <= 0 {
		return
	}
	fb.lastTick = fb.lastTick.Add(time.Duration(float64(n) / f.rate * float64(time.Second)))
	c := &fb.b.Counts
	n = min(n, c.Queued)
	c.Queued -= n
	c.Submitted += n
	settle := max(0, c.Submitted-int64(f.rate/2))
	if c.Queued == 0 {
		settle = c.Submitted
	}
	failed := settle / 20
	c.Submitted -= settle
	c.Delivered += settle - failed
	c.Failed += failed
	if c.Queued == 0 {
		fb.b.Status = campaignd.StatusCompleted
		fb.b.CompletedAt = now
	}
}

func (f *fakeBackend) get(id uint64) (*fakeBroadcast, error) {
	fb := f.bs[id]
	if fb == nil || fb.deleted {
		return nil, campaignd.Errorf(campaignd.ENOTFOUND, "Broadcast %d not found.", id)
	}
	f.advance(fb)
	return fb, nil
}

func (f *fakeBackend) Broadcasts(ctx context.Context, st campaignd.Status, offset, limit int) ([]*campaignd.Broadcast, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []*campaignd.Broadcast
	for _, fb := range f.bs {
		if fb.deleted {
			continue
		}
		f.advance(fb)
		if st == "" || fb.b.Status == st {
			b := fb.b
			all = append(all, &b)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].CreatedAt.After(all[j].CreatedAt) })
	total := len(all)
	all = all[min(offset, total):min(offset+limit, total)]
	return all, total, nil
}

func (f *fakeBackend) Broadcast(ctx context.Context, id uint64) (*campaignd.Broadcast, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fb, err := f.get(id)
	if err != nil {
		return nil, err
	}
	b := fb.b
	return &b, nil
}

// message builds message i of a broadcast; its state follows the counts.
func (f *fakeBackend) message(b *campaignd.Broadcast, i int64) *campaignd.Message {
	name := fakeNames[i%int64(len(fakeNames))]
	text := fmt.Sprintf("Hola %s, tienes %d puntos PAYBACK. Canjéalos antes del 31 de marzo en tiendas participantes.", name, 150+i*7)
	if b.ID%2 == 0 {
		text = fmt.Sprintf("Hola %s, este fin de semana acumulas doble de puntos PAYBACK en tu compra. Te esperamos!", name)
	}
	enc, _, seg := campaignd.AnalyzeText(text)
	m := &campaignd.Message{
		Row: campaignd.Row{
			Line: int(i) + 2, Recipient: fmt.Sprintf("52551%07d", 1000+i), RecipientRaw: fmt.Sprintf("55 1%03d %04d", i%1000, 1000+i),
			MemberID: fmt.Sprintf("58%08d", i+1), Text: text, Encoding: enc, Segments: seg,
		},
		BroadcastID: b.ID, Index: uint32(i), TrackingID: b.TrackingBase + uint64(i), State: campaignd.StateQueued,
	}
	c := b.Counts
	switch {
	case i < c.Delivered:
		m.State = campaignd.StateDelivered
	case i < c.Delivered+c.Failed:
		switch i % 3 {
		case 0:
			m.State, m.ErrorCode = campaignd.StateRejected, 0x45 // ESME_RSUBMITFAIL
		case 1:
			m.State = campaignd.StateExpired
		default:
			m.State = campaignd.StateUndeliverable
		}
	case i < c.Delivered+c.Failed+c.Unknown:
		m.State = campaignd.StateUnknown
	case i < c.Delivered+c.Failed+c.Unknown+c.Submitted:
		m.State = campaignd.StateSubmitted
	case i < c.Delivered+c.Failed+c.Unknown+c.Submitted+c.Cancelled:
		m.State = campaignd.StateCancelled
	}
	if m.State != campaignd.StateQueued && m.State != campaignd.StateCancelled {
		m.SubmittedAt = b.StartedAt.Add(time.Duration(i) * 25 * time.Millisecond)
		m.SMSCIDs = []string{fmt.Sprintf("%x", 0xa000+i)}
		if m.State.Final() {
			m.SettledAt = m.SubmittedAt.Add(3 * time.Second)
		}
	}
	return m
}

func (f *fakeBackend) Preview(ctx context.Context, id uint64, n int) ([]*campaignd.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fb, err := f.get(id)
	if err != nil {
		return nil, err
	}
	var out []*campaignd.Message
	for i := int64(0); i < min(int64(n), fb.b.Counts.Total); i++ {
		out = append(out, f.message(&fb.b, i))
	}
	return out, nil
}

func (f *fakeBackend) Messages(ctx context.Context, id uint64, fn func(*campaignd.Message) error) error {
	f.mu.Lock()
	fb, err := f.get(id)
	var b campaignd.Broadcast
	if err == nil {
		b = fb.b
	}
	f.mu.Unlock()
	if err != nil {
		return err
	}
	for i := int64(0); i < b.Counts.Total; i++ {
		if err := fn(f.message(&b, i)); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeBackend) Upload(ctx context.Context, id uint64, maxErrors int) (*campaignd.Upload, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.uploads {
		if u.ID == id {
			c := *u
			c.Errors = c.Errors[:min(len(c.Errors), maxErrors)]
			return &c, nil
		}
	}
	return nil, campaignd.Errorf(campaignd.ENOTFOUND, "Upload %d not found.", id)
}

// Uploads ignores maxErrors, so that the tests show the webui bounds a
// list whatever the backend returns.
func (f *fakeBackend) Uploads(ctx context.Context, offset, limit, maxErrors int) ([]*campaignd.Upload, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	total := len(f.uploads)
	return append([]*campaignd.Upload(nil), f.uploads[min(offset, total):min(offset+limit, total)]...), total, nil
}

func (f *fakeBackend) UploadErrors(ctx context.Context, id uint64, offset, limit int) (*campaignd.Upload, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.uploads {
		if u.ID == id {
			c, n := *u, len(u.Errors)
			c.Errors = append([]campaignd.FileError(nil), u.Errors[min(offset, n):min(offset+limit, n)]...)
			return &c, n, nil
		}
	}
	return nil, 0, campaignd.Errorf(campaignd.ENOTFOUND, "Upload %d not found.", id)
}

func (f *fakeBackend) AuditLog(ctx context.Context, id uint64) ([]campaignd.AuditEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]campaignd.AuditEntry(nil), f.audit[id]...), nil
}

func (f *fakeBackend) Act(ctx context.Context, r campaignd.ActionRequest) (*campaignd.Broadcast, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fb, err := f.get(r.BroadcastID)
	if err != nil {
		return nil, err
	}
	to, err := campaignd.Transition(fb.b.Status, r.Action)
	if err != nil {
		return nil, err
	}
	// As the engine: a validity only with send, schedule or validity, in
	// bounds, checked before anything changes.
	switch {
	case r.Validity != 0 && r.Action != campaignd.ActionSend && r.Action != campaignd.ActionSchedule && r.Action != campaignd.ActionValidity:
		return nil, campaignd.Errorf(campaignd.EINVALID, "A validity period can be set only with send or schedule.")
	case r.Validity != 0:
		if err := campaignd.CheckValidity(r.Validity); err != nil {
			return nil, err
		}
	case r.Action == campaignd.ActionValidity:
		return nil, campaignd.Errorf(campaignd.EINVALID, "Missing validity.")
	}
	now := time.Now()
	detail := ""
	if r.Validity != 0 {
		if r.Action == campaignd.ActionSchedule && !r.At.After(f.now()) {
			return nil, campaignd.Errorf(campaignd.EINVALID, "The date must be in the future.")
		}
		old := "default"
		if fb.b.Validity != 0 {
			old = campaignd.FormatValidity(fb.b.Validity)
		}
		fb.b.Validity = r.Validity
		f.audit[r.BroadcastID] = append(f.audit[r.BroadcastID], campaignd.AuditEntry{At: now, User: r.User, RemoteAddr: r.RemoteAddr,
			BroadcastID: r.BroadcastID, Action: "validity", Detail: fmt.Sprintf("validity %s -> %s", old, campaignd.FormatValidity(r.Validity))})
		if r.Action == campaignd.ActionValidity {
			b := fb.b
			return &b, nil
		}
	}
	switch r.Action {
	case campaignd.ActionDelete:
		fb.deleted = true
	case campaignd.ActionSchedule:
		if !r.At.After(f.now()) {
			return nil, campaignd.Errorf(campaignd.EINVALID, "The date must be in the future.")
		}
		fb.b.ScheduledAt = r.At
		detail = r.At.Format(time.RFC3339)
	case campaignd.ActionSend:
		fb.b.StartedAt, fb.lastTick = now, now
		fb.b.ScheduledAt = time.Time{} // as the engine: send now clears the schedule
	case campaignd.ActionCancel:
		fb.b.CompletedAt = now
		if !f.slowCancel {
			fb.b.Counts.Cancelled += fb.b.Counts.Queued
			fb.b.Counts.Queued = 0
		}
	}
	fb.b.Status = to
	fb.lastTick = now
	f.audit[r.BroadcastID] = append(f.audit[r.BroadcastID], campaignd.AuditEntry{
		At: now, User: r.User, RemoteAddr: r.RemoteAddr, BroadcastID: r.BroadcastID, Action: string(r.Action), Detail: detail,
	})
	b := fb.b
	return &b, nil
}

// setStatus changes a broadcast behind the console's back (another
// operator, the engine).
// edit changes a broadcast behind the console's back and may add an audit
// entry (the engine's "system" actions).
func (f *fakeBackend) edit(id uint64, fn func(b *campaignd.Broadcast), audit ...campaignd.AuditEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.bs[id].b)
	f.audit[id] = append(f.audit[id], audit...)
}

func (f *fakeBackend) setStatus(id uint64, st campaignd.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bs[id].b.Status = st
}

func (f *fakeBackend) Progress(id uint64) (float64, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fb := f.bs[id]
	if fb == nil || fb.b.Status != campaignd.StatusSending {
		return 0, 0
	}
	return f.rate, time.Duration(float64(fb.b.Counts.Queued) / f.rate * float64(time.Second))
}

func (f *fakeBackend) Reports(ctx context.Context) ([]*campaignd.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*campaignd.Report
	for _, r := range f.reports {
		c := *r
		out = append(out, &c)
	}
	return out, nil
}

func (f *fakeBackend) ReportCSV(ctx context.Context, day string, w io.Writer) (*campaignd.Report, error) {
	if _, err := io.WriteString(w, campaignd.ReportHeader+"\n28776,5512341000,100000,Puntos Enero,"+day+" 10:00:00.0,DELIVRD,5800000001\n"); err != nil {
		return nil, err
	}
	return &campaignd.Report{Day: day, Rows: 1}, nil
}

func (f *fakeBackend) PushReport(ctx context.Context, day, user, remoteAddr string) (*campaignd.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pushes = append(f.pushes, day+" by "+user)
	for _, r := range f.reports {
		if r.Day == day {
			r.PushState, r.PushedAt, r.LastError, r.NextAttempt = campaignd.PushDone, time.Now(), "", time.Time{}
			r.Attempts++
			c := *r
			return &c, nil
		}
	}
	return &campaignd.Report{Day: day, Partial: true, PushState: campaignd.PushDone, PushedAt: time.Now()}, nil
}

func (f *fakeBackend) SaveSession(s *campaignd.Session) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := *s
	f.sessions[s.ID] = &c
	return nil
}

func (f *fakeBackend) Session(id string) (*campaignd.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sessions[id]
	if s == nil {
		return nil, campaignd.Errorf(campaignd.ENOTFOUND, "Session not found.")
	}
	c := *s
	return &c, nil
}

func (f *fakeBackend) DeleteSession(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sessions, id)
	return nil
}

func (f *fakeBackend) Ready(ctx context.Context) (bool, map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ready {
		return false, map[string]string{"store": "open", "ftp": "down: listener closed", "smsc": "unbound"}
	}
	return true, map[string]string{"store": "open", "ftp": "listening", "smsc": "bound"}
}

var _ Backend = (*fakeBackend)(nil)

// AuditSearch filters the fake's audit entries, newest first.
func (f *fakeBackend) AuditSearch(ctx context.Context, q AuditFilter) ([]campaignd.AuditEntry, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []campaignd.AuditEntry
	for id, es := range f.audit {
		if q.BroadcastID != 0 && id != q.BroadcastID {
			continue
		}
		for _, e := range es {
			if (q.User != "" && e.User != q.User) || (!q.From.IsZero() && e.At.Before(q.From)) || (!q.To.IsZero() && !e.At.Before(q.To)) {
				continue
			}
			all = append(all, e)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].At.After(all[j].At) })
	if q.Offset >= len(all) {
		return nil, len(all), nil
	}
	return all[q.Offset:min(len(all), q.Offset+q.Limit)], len(all), nil
}
