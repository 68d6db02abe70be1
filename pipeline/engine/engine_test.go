package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
	"campaignd/pipeline/engine"
	"campaignd/pipeline/wheel"
	"campaignd/store"
)

// fakeSender is a Sender made of function fields; nil fields succeed.
type fakeSender struct {
	SubmitFn func(ctx context.Context, m campaignd.OutMessage) ([]string, error)
	BoundFn  func() bool

	mu     sync.Mutex
	calls  int
	byDest map[string]int
	order  []string
	nextID atomic.Uint64
}

func (s *fakeSender) Submit(ctx context.Context, m campaignd.OutMessage) ([]string, error) {
	s.mu.Lock()
	s.calls++
	if s.byDest == nil {
		s.byDest = map[string]int{}
	}
	s.byDest[m.Dest]++
	s.order = append(s.order, m.Source+":"+m.Dest)
	s.mu.Unlock()
	if s.SubmitFn != nil {
		return s.SubmitFn(ctx, m)
	}
	return []string{strconv.FormatUint(s.nextID.Add(1), 10)}, nil
}

func (s *fakeSender) Bound() bool { return s.BoundFn == nil || s.BoundFn() }

func (s *fakeSender) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *fakeSender) Count(dest string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byDest[dest]
}

func (s *fakeSender) Order() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.order...)
}

// recEvents records the engine's events.
type recEvents struct {
	mu         sync.Mutex
	settled    map[string]int
	receipts   map[string]int
	duplicates int
}

func (e *recEvents) TimersPending(int)                {}
func (e *recEvents) TimerFired(string, time.Duration) {}
func (e *recEvents) MessageSettled(s string)          { e.add(&e.settled, s) }
func (e *recEvents) ReceiptReceived(o string)         { e.add(&e.receipts, o) }
func (e *recEvents) DuplicatesAfterCrash(n int) {
	e.mu.Lock()
	e.duplicates += n
	e.mu.Unlock()
}

func (e *recEvents) add(m *map[string]int, k string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if *m == nil {
		*m = map[string]int{}
	}
	(*m)[k]++
}

func (e *recEvents) Receipts(k string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.receipts[k]
}

func (e *recEvents) Settled(k string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.settled[k]
}

type harness struct {
	db     *store.DB
	clk    *testenv.Clock
	sender *fakeSender
	events *recEvents
	wheel  *wheel.Wheel
	eng    *engine.Engine
}

var engT0 = time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)

func newHarness(tb testing.TB, db *store.DB, sender *fakeSender, mod func(*engine.Options)) *harness {
	tb.Helper()
	h := &harness{db: db, clk: testenv.NewClock(engT0), sender: sender, events: &recEvents{}}
	if h.db == nil {
		h.db = testenv.OpenStore(tb)
	}
	if h.sender == nil {
		h.sender = &fakeSender{}
	}
	h.wheel = wheel.NewWheel(h.db, wheel.Options{Now: h.clk.Now, After: h.clk.After})
	o := engine.Options{Store: h.db, Sender: h.sender, Wheel: h.wheel, Window: 4,
		Location: time.UTC, Now: h.clk.Now, After: h.clk.After, Events: h.events}
	if mod != nil {
		mod(&o)
	}
	eng, err := engine.NewEngine(o)
	if err != nil {
		tb.Fatal(err)
	}
	h.eng = eng
	return h
}

func (h *harness) start(tb testing.TB) *harness {
	tb.Helper()
	if err := h.eng.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	if err := h.wheel.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	// The engine's pauses (a resubmit's, the writer's) run on the fake clock:
	// step it until Close has returned.
	done := make(chan struct{})
	go func() {
		h.eng.Close(context.Background())
		close(done)
	}()
	for stepping := true; stepping; {
		select {
		case <-done:
			stepping = false
		case <-time.After(5 * time.Millisecond):
			h.clk.Advance(100 * time.Millisecond)
		}
	}
	h.wheel.Close()
}

// mustBroadcast stores a broadcast of n one-part messages to 52551000000i.
func mustBroadcast(tb testing.TB, db *store.DB, n int, mod func(*campaignd.Broadcast)) *campaignd.Broadcast {
	tb.Helper()
	name := fmt.Sprintf("b%d.csv", time.Now().UnixNano())
	job, err := db.CreateUpload(&campaignd.Upload{Path: "/" + name, FileName: name, ReceivedAt: engT0})
	if err != nil {
		tb.Fatal(err)
	}
	w, err := db.NewBroadcastWriter(job)
	if err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		r := campaignd.Row{Line: i + 2, Recipient: dest(i), RecipientRaw: dest(i), Text: "hola", Encoding: "GSM-7", Segments: 1}
		if err := w.Add(&r); err != nil {
			tb.Fatal(err)
		}
	}
	b := &campaignd.Broadcast{Name: name, FileName: name, Sender: "28776", Status: campaignd.StatusPending, CreatedAt: engT0}
	if mod != nil {
		mod(b)
	}
	if err := w.Commit(b, &job.Upload); err != nil {
		tb.Fatal(err)
	}
	return b
}

func dest(i int) string { return fmt.Sprintf("52551%07d", i) }

func (h *harness) act(tb testing.TB, bid uint64, a campaignd.Action, at time.Time) (*campaignd.Broadcast, error) {
	tb.Helper()
	return h.eng.Act(context.Background(), campaignd.ActionRequest{BroadcastID: bid, Action: a, At: at, User: "ana", RemoteAddr: "10.0.0.7"})
}

func (h *harness) mustAct(tb testing.TB, bid uint64, a campaignd.Action, at time.Time) *campaignd.Broadcast {
	tb.Helper()
	b, err := h.act(tb, bid, a, at)
	if err != nil {
		tb.Fatalf("%s: %v", a, err)
	}
	return b
}

func (h *harness) broadcast(tb testing.TB, bid uint64) *campaignd.Broadcast {
	tb.Helper()
	b, err := h.db.Broadcast(bid)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func (h *harness) waitStatus(tb testing.TB, bid uint64, s campaignd.Status) *campaignd.Broadcast {
	tb.Helper()
	var b *campaignd.Broadcast
	testenv.Wait(tb, "status "+string(s), func() bool { b = h.broadcast(tb, bid); return b.Status == s })
	return b
}

// advanceToStatus waits for broadcast bid to reach status s; if it has not
// after a moment, it steps the fake clock a second at a time: a goroutine
// that read Now just before an Advance armed its timer against the old
// time, and real time would have gone on.
func (h *harness) advanceToStatus(tb testing.TB, bid uint64, s campaignd.Status) *campaignd.Broadcast {
	tb.Helper()
	var b *campaignd.Broadcast
	testenv.AdvanceUntil(tb, h.clk, time.Second, "status "+string(s), func() bool { b = h.broadcast(tb, bid); return b.Status == s })
	return b
}

func (h *harness) states(tb testing.TB, bid uint64) []*campaignd.Message {
	tb.Helper()
	var out []*campaignd.Message
	if err := h.db.Messages(bid, 0, func(m *campaignd.Message) error { out = append(out, m); return nil }); err != nil {
		tb.Fatal(err)
	}
	return out
}

// checkExactlyOnce fails unless every message of b was submitted exactly once.
func (h *harness) checkExactlyOnce(tb testing.TB, n int) {
	tb.Helper()
	for i := range n {
		if c := h.sender.Count(dest(i)); c != 1 {
			tb.Fatalf("message %d submitted %d times", i, c)
		}
	}
}

func TestEngineSendsEveryMessageOnceAndCompletes(t *testing.T) {
	h := newHarness(t, nil, nil, nil).start(t)
	b := mustBroadcast(t, h.db, 1000, nil)
	if got := h.mustAct(t, b.ID, campaignd.ActionSend, time.Time{}); got.Status != campaignd.StatusSending {
		t.Fatalf("status after send = %s", got.Status)
	}
	got := h.waitStatus(t, b.ID, campaignd.StatusCompleted)
	h.checkExactlyOnce(t, 1000)
	want := campaignd.Counts{Total: 1000, Submitted: 1000}
	if got.Counts != want || got.CompletedAt.IsZero() {
		t.Fatalf("counts = %+v, completed at %v", got.Counts, got.CompletedAt)
	}
	for _, m := range h.states(t, b.ID) {
		if m.State != campaignd.StateSubmitted || len(m.SMSCIDs) != 1 || m.Attempts != 1 || !m.SubmittedAt.Equal(engT0) {
			t.Fatalf("message %d = %+v", m.Index, m)
		}
	}
	log, _ := h.db.AuditLog(b.ID)
	if len(log) != 1 || log[0].User != "ana" || log[0].RemoteAddr != "10.0.0.7" || log[0].Action != "send" || !log[0].At.Equal(engT0) {
		t.Fatalf("audit = %+v", log)
	}
}

// gatedSender lets a test hold submits and count those in progress.
func gatedSender(inflight *atomic.Int32, delay time.Duration) *fakeSender {
	s := &fakeSender{}
	s.SubmitFn = func(ctx context.Context, m campaignd.OutMessage) ([]string, error) {
		inflight.Add(1)
		defer inflight.Add(-1)
		time.Sleep(delay)
		return []string{"id-" + m.Dest}, nil
	}
	return s
}

func TestEnginePauseStopsSubmitsAndResumeContinuesExactly(t *testing.T) {
	var inflight atomic.Int32
	h := newHarness(t, nil, gatedSender(&inflight, 200*time.Microsecond), nil).start(t)
	const n = 3000
	b := mustBroadcast(t, h.db, n, nil)
	h.mustAct(t, b.ID, campaignd.ActionSend, time.Time{})
	testenv.Wait(t, "some submits", func() bool { return h.sender.Calls() > 200 })
	h.mustAct(t, b.ID, campaignd.ActionPause, time.Time{})
	atPause := h.sender.Calls()
	testenv.Wait(t, "in-flight submits to finish", func() bool { return inflight.Load() == 0 })
	settled := h.sender.Calls()
	// At most the submitters that had already taken a message may start one.
	if settled-atPause > 4 {
		t.Fatalf("%d submits started after pause returned", settled-atPause)
	}
	h.eng.SMSCBound(true) // wake the submitters: they must still not send
	time.Sleep(20 * time.Millisecond)
	if c := h.sender.Calls(); c != settled {
		t.Fatalf("submits went on while paused: %d -> %d", settled, c)
	}
	if got := h.broadcast(t, b.ID); got.Status != campaignd.StatusPaused {
		t.Fatalf("status = %s", got.Status)
	}
	testenv.Wait(t, "in-flight outcomes recorded", func() bool { return h.broadcast(t, b.ID).Counts.Submitted == int64(settled) })
	h.mustAct(t, b.ID, campaignd.ActionResume, time.Time{})
	h.waitStatus(t, b.ID, campaignd.StatusCompleted)
	h.checkExactlyOnce(t, n)
}

func TestEngineCancelSettlesTheRest(t *testing.T) {
	var inflight atomic.Int32
	h := newHarness(t, nil, gatedSender(&inflight, 100*time.Microsecond), nil).start(t)
	const n = 2000
	b := mustBroadcast(t, h.db, n, nil)
	h.mustAct(t, b.ID, campaignd.ActionSend, time.Time{})
	testenv.Wait(t, "some submits", func() bool { return h.sender.Calls() > 100 })
	if _, err := h.act(t, b.ID, campaignd.ActionCancel, time.Time{}); campaignd.ErrorCode(err) != campaignd.ECONFLICT {
		t.Fatalf("cancel while sending: %v, want a conflict", err)
	}
	h.mustAct(t, b.ID, campaignd.ActionPause, time.Time{})
	h.mustAct(t, b.ID, campaignd.ActionCancel, time.Time{})
	var got *campaignd.Broadcast
	testenv.Wait(t, "every message settled", func() bool {
		got = h.broadcast(t, b.ID)
		return got.Counts.Queued == 0
	})
	sent := int64(h.sender.Calls())
	if got.Status != campaignd.StatusCancelled || got.Counts.Submitted != sent || got.Counts.Cancelled != n-sent {
		t.Fatalf("broadcast = %s %+v, %d sent", got.Status, got.Counts, sent)
	}
	if _, err := h.act(t, b.ID, campaignd.ActionResume, time.Time{}); campaignd.ErrorCode(err) != campaignd.ECONFLICT {
		t.Fatalf("resume after cancel: %v", err)
	}
}

func TestEngineRetriesTemporaryErrors(t *testing.T) {
	var mu sync.Mutex
	refused := map[string]bool{}
	s := &fakeSender{}
	s.SubmitFn = func(ctx context.Context, m campaignd.OutMessage) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		if !refused[m.Dest] {
			refused[m.Dest] = true
			return nil, &campaignd.SubmitError{Status: 0x58, Temporary: true}
		}
		return []string{"ok-" + m.Dest}, nil
	}
	h := newHarness(t, nil, s, nil).start(t)
	b := mustBroadcast(t, h.db, 50, nil)
	h.mustAct(t, b.ID, campaignd.ActionSend, time.Time{})
	testenv.Wait(t, "first attempts", func() bool { return h.sender.Calls() == 50 })
	testenv.Wait(t, "retry timers", func() bool { return h.wheel.Pending() >= 50 })
	if got := h.broadcast(t, b.ID); got.Status != campaignd.StatusSending || got.Counts.Queued != 50 {
		t.Fatalf("before the backoff: %s %+v", got.Status, got.Counts)
	}
	h.clk.Advance(5 * time.Second)
	got := h.advanceToStatus(t, b.ID, campaignd.StatusCompleted)
	if got.Counts.Submitted != 50 {
		t.Fatalf("counts = %+v", got.Counts)
	}
	for _, m := range h.states(t, b.ID) {
		if m.Attempts != 2 || m.State != campaignd.StateSubmitted {
			t.Fatalf("message %d: %+v", m.Index, m)
		}
	}
}

func TestEngineRejectsAfterMaxAttempts(t *testing.T) {
	s := &fakeSender{}
	s.SubmitFn = func(ctx context.Context, m campaignd.OutMessage) ([]string, error) {
		if m.Dest == dest(1) {
			return nil, &campaignd.SubmitError{Status: 0x14, Temporary: true}
		}
		if m.Dest == dest(2) {
			return nil, &campaignd.SubmitError{Status: 0x0B}
		}
		return []string{"x" + m.Dest}, nil
	}
	h := newHarness(t, nil, s, func(o *engine.Options) { o.MaxAttempts = 3 }).start(t)
	b := mustBroadcast(t, h.db, 4, nil)
	h.mustAct(t, b.ID, campaignd.ActionSend, time.Time{})
	for attempt := 1; attempt < 3; attempt++ {
		// Stepping on while waiting: the wheel may arm its wait against a
		// time read just before the last Advance.
		testenv.AdvanceUntil(t, h.clk, time.Second, "attempt", func() bool { return h.sender.Count(dest(1)) == attempt })
		testenv.Wait(t, "retry timer", func() bool { _, ok, _ := h.wheel.Due(engine.TimerRetry, fmt.Sprintf("%d/1", b.ID)); return ok })
		h.clk.Advance(time.Duration(attempt) * 5 * time.Second)
	}
	got := h.advanceToStatus(t, b.ID, campaignd.StatusCompleted)
	if got.Counts.Failed != 2 || got.Counts.Submitted != 2 {
		t.Fatalf("counts = %+v", got.Counts)
	}
	ms := h.states(t, b.ID)
	if m := ms[1]; m.State != campaignd.StateRejected || m.ErrorCode != 0x14 || m.Attempts != 3 || m.SettledAt.IsZero() {
		t.Fatalf("throttled message = %+v", m)
	}
	if m := ms[2]; m.State != campaignd.StateRejected || m.ErrorCode != 0x0B || m.Attempts != 1 {
		t.Fatalf("refused message = %+v", m)
	}
	if h.sender.Count(dest(2)) != 1 {
		t.Fatal("a final error was retried")
	}
	var day []uint64
	h.db.ReportMessages(engT0.Format("20060102"), func(m *campaignd.Message) error { day = append(day, m.TrackingID); return nil })
	if len(day) != 2 || day[0] != b.TrackingBase+1 || day[1] != b.TrackingBase+2 {
		t.Fatalf("settled index = %v", day)
	}
	if h.events.Settled("REJECTD") != 2 {
		t.Fatalf("settled events = %v", h.events.settled)
	}
}

func TestEngineResubmitsAfterTimeoutAndLostBind(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	s := &fakeSender{}
	s.SubmitFn = func(ctx context.Context, m campaignd.OutMessage) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		seen[m.Dest]++
		switch {
		case m.Dest == dest(3) && seen[m.Dest] == 1:
			return nil, campaignd.ErrSubmitTimeout
		case m.Dest == dest(5) && seen[m.Dest] == 1:
			return nil, campaignd.ErrNotBound
		}
		return []string{"x" + m.Dest}, nil
	}
	h := newHarness(t, nil, s, nil).start(t)
	b := mustBroadcast(t, h.db, 10, nil)
	h.mustAct(t, b.ID, campaignd.ActionSend, time.Time{})
	got := h.advanceToStatus(t, b.ID, campaignd.StatusCompleted) // a resubmit waits 100 ms of the clock
	if got.Counts.Submitted != 10 {
		t.Fatalf("counts = %+v", got.Counts)
	}
	if h.sender.Count(dest(3)) != 2 || h.sender.Count(dest(5)) != 2 {
		t.Fatal("unknown outcomes were not submitted again")
	}
	if m := h.states(t, b.ID)[3]; m.Attempts != 1 {
		t.Fatalf("an unknown outcome counted as an attempt: %+v", m)
	}
}

func TestEngineWaitsForBind(t *testing.T) {
	var bound atomic.Bool
	s := &fakeSender{BoundFn: bound.Load}
	h := newHarness(t, nil, s, nil).start(t)
	b := mustBroadcast(t, h.db, 20, nil)
	h.mustAct(t, b.ID, campaignd.ActionSend, time.Time{})
	testenv.Wait(t, "wait reason", func() bool { return h.broadcast(t, b.ID).Wait == engine.WaitUnbound })
	if c := h.sender.Calls(); c != 0 {
		t.Fatalf("%d submits while unbound", c)
	}
	bound.Store(true)
	h.eng.SMSCBound(true)
	got := h.waitStatus(t, b.ID, campaignd.StatusCompleted)
	if got.Wait != "" || got.Counts.Submitted != 20 {
		t.Fatalf("after the bind: %+v", got)
	}
}

func TestEngineSharesTheRateBetweenBroadcasts(t *testing.T) {
	var inflight atomic.Int32
	h := newHarness(t, nil, gatedSender(&inflight, 0), func(o *engine.Options) { o.Window = 1 })
	// Large enough that the overlap is long even when the later one's first
	// page is read late on a loaded machine (B first sent at A's 271st of 300
	// was seen).
	a := mustBroadcast(t, h.db, 1000, func(b *campaignd.Broadcast) { b.Status, b.Sender = campaignd.StatusSending, "A" })
	c := mustBroadcast(t, h.db, 1000, func(b *campaignd.Broadcast) { b.Status, b.Sender = campaignd.StatusSending, "B" })
	h.start(t) // both are recovered as sending
	h.waitStatus(t, a.ID, campaignd.StatusCompleted)
	h.waitStatus(t, c.ID, campaignd.StatusCompleted)
	// Once both are being sent they share the submits: count A's share
	// from the first submit of the later one to the end of the earlier
	// one. Strict alternation gives one half; page reads under a loaded
	// scheduler shift it a little; starvation would give 0 or 1.
	order := h.sender.Order()
	first := map[byte]int{}
	last := map[byte]int{}
	for i, s := range order {
		if _, ok := first[s[0]]; !ok {
			first[s[0]] = i
		}
		last[s[0]] = i
	}
	from, to := max(first['A'], first['B']), min(last['A'], last['B'])
	na := 0
	for _, s := range order[from : to+1] {
		if s[0] == 'A' {
			na++
		}
	}
	if n := to + 1 - from; n < 100 || na*100 < n*35 || na*100 > n*65 {
		t.Fatalf("while both were sending (submits %d-%d): %d of %d were A's, want about half", from, to, na, n)
	}
}

func TestEngineSendWindow(t *testing.T) {
	h := newHarness(t, nil, nil, func(o *engine.Options) { o.SendWindow = "08:00-21:00" })
	h.clk.Advance(9*time.Hour + 30*time.Minute) // 21:30 UTC
	h.start(t)
	b := mustBroadcast(t, h.db, 10, nil)
	h.mustAct(t, b.ID, campaignd.ActionSend, time.Time{})
	testenv.Wait(t, "wait reason", func() bool { return h.broadcast(t, b.ID).Wait != "" })
	if w := h.broadcast(t, b.ID).Wait; w != "outside the send window 08:00-21:00; sending resumes at 2026-05-05 08:00" {
		t.Fatalf("wait = %q", w)
	}
	testenv.Wait(t, "window timer", func() bool { _, ok, _ := h.wheel.Due(engine.TimerWindow, "open"); return ok })
	h.clk.Advance(10*time.Hour + 29*time.Minute) // 07:59
	time.Sleep(20 * time.Millisecond)
	if c := h.sender.Calls(); c != 0 {
		t.Fatalf("%d submits outside the window", c)
	}
	h.clk.Advance(time.Minute)
	got := h.waitStatus(t, b.ID, campaignd.StatusCompleted)
	if got.Counts.Submitted != 10 || got.Wait != "" {
		t.Fatalf("after the opening: %+v", got)
	}
}

func TestEngineActionConflicts(t *testing.T) {
	h := newHarness(t, nil, &fakeSender{BoundFn: func() bool { return false }}, nil).start(t)
	allowed := map[campaignd.Status][]campaignd.Action{
		campaignd.StatusPending:   {campaignd.ActionSend, campaignd.ActionSchedule, campaignd.ActionDelete},
		campaignd.StatusScheduled: {campaignd.ActionSend, campaignd.ActionSchedule, campaignd.ActionDelete},
		campaignd.StatusSending:   {campaignd.ActionPause},
		campaignd.StatusPaused:    {campaignd.ActionResume, campaignd.ActionCancel},
		campaignd.StatusCompleted: nil,
		campaignd.StatusCancelled: nil,
	}
	actions := []campaignd.Action{campaignd.ActionSend, campaignd.ActionSchedule, campaignd.ActionPause,
		campaignd.ActionResume, campaignd.ActionCancel, campaignd.ActionDelete}
	future := engT0.Add(time.Hour)
	for status, ok := range allowed {
		for _, a := range actions {
			t.Run(string(status)+"/"+string(a), func(t *testing.T) {
				b := mustBroadcast(t, h.db, 3, func(b *campaignd.Broadcast) { b.Status = status })
				_, err := h.act(t, b.ID, a, future)
				want := false
				for _, x := range ok {
					want = want || x == a
				}
				if want && err != nil {
					t.Fatalf("allowed action failed: %v", err)
				}
				if !want && campaignd.ErrorCode(err) != campaignd.ECONFLICT {
					t.Fatalf("err = %v, want ECONFLICT", err)
				}
				log, _ := h.db.AuditLog(b.ID)
				if want != (len(log) == 1) {
					t.Fatalf("audit = %+v", log)
				}
				if want && (log[0].Action != string(a) || log[0].User != "ana" || log[0].RemoteAddr != "10.0.0.7" || log[0].At.IsZero()) {
					t.Fatalf("audit = %+v", log[0])
				}
			})
		}
	}
	if _, err := h.act(t, 99999, campaignd.ActionSend, time.Time{}); campaignd.ErrorCode(err) != campaignd.ENOTFOUND {
		t.Fatalf("unknown broadcast: %v", err)
	}
}

func TestEngineScheduleRedateAndStart(t *testing.T) {
	h := newHarness(t, nil, nil, nil).start(t)
	b := mustBroadcast(t, h.db, 5, nil)
	if _, err := h.act(t, b.ID, campaignd.ActionSchedule, engT0.Add(-time.Minute)); campaignd.ErrorCode(err) != campaignd.EINVALID {
		t.Fatalf("schedule in the past: %v", err)
	}
	if _, err := h.act(t, b.ID, campaignd.ActionSchedule, engT0); campaignd.ErrorCode(err) != campaignd.EINVALID {
		t.Fatalf("schedule now: %v", err)
	}
	t1, t2 := engT0.Add(time.Hour), engT0.Add(3*time.Hour)
	if got := h.mustAct(t, b.ID, campaignd.ActionSchedule, t1); got.Status != campaignd.StatusScheduled || !got.ScheduledAt.Equal(t1) {
		t.Fatalf("scheduled = %+v", got)
	}
	h.mustAct(t, b.ID, campaignd.ActionSchedule, t2) // re-date
	if due, ok, _ := h.wheel.Due(engine.TimerBroadcast, strconv.FormatUint(b.ID, 10)); !ok || !due.Equal(t2) {
		t.Fatalf("timer due %v %v, want %v", due, ok, t2)
	}
	h.clk.Advance(2 * time.Hour)
	time.Sleep(20 * time.Millisecond)
	if got := h.broadcast(t, b.ID); got.Status != campaignd.StatusScheduled {
		t.Fatalf("started at the old date: %s", got.Status)
	}
	h.clk.Advance(time.Hour)
	got := h.waitStatus(t, b.ID, campaignd.StatusCompleted)
	if !got.StartedAt.Equal(t2) || got.Counts.Submitted != 5 {
		t.Fatalf("started %v, counts %+v", got.StartedAt, got.Counts)
	}
	log, _ := h.db.AuditLog(b.ID)
	if len(log) != 3 || log[2].User != engine.SystemUser || log[2].Action != "start" {
		t.Fatalf("audit = %+v", log)
	}
}

func TestEngineDeleteCancelsTheTimer(t *testing.T) {
	h := newHarness(t, nil, nil, nil).start(t)
	b := mustBroadcast(t, h.db, 5, nil)
	h.mustAct(t, b.ID, campaignd.ActionSchedule, engT0.Add(time.Hour))
	h.mustAct(t, b.ID, campaignd.ActionDelete, time.Time{})
	if _, ok, _ := h.wheel.Due(engine.TimerBroadcast, strconv.FormatUint(b.ID, 10)); ok {
		t.Fatal("timer of a deleted broadcast still pending")
	}
	if _, err := h.db.Broadcast(b.ID); campaignd.ErrorCode(err) != campaignd.ENOTFOUND {
		t.Fatalf("broadcast still there: %v", err)
	}
	if log, _ := h.db.AuditLog(b.ID); len(log) != 2 || log[1].Action != "delete" {
		t.Fatalf("audit = %+v", log)
	}
	h.clk.Advance(2 * time.Hour)
	time.Sleep(10 * time.Millisecond)
	if h.sender.Calls() != 0 {
		t.Fatal("a deleted broadcast was sent")
	}
}

func TestEngineStartRecovers(t *testing.T) {
	db := testenv.OpenStore(t)
	// A broadcast that was sending when the process died: 0-9 recorded,
	// 10-12 in flight (still queued), 13 recorded, the rest not taken.
	sending := mustBroadcast(t, db, 40, func(b *campaignd.Broadcast) { b.Status = campaignd.StatusSending })
	var cs []campaignd.Change
	for _, i := range []uint32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13} {
		cs = append(cs, campaignd.Change{BroadcastID: sending.ID, Index: i, From: campaignd.StateQueued,
			To: campaignd.StateSubmitted, SMSCIDs: []string{fmt.Sprint("old", i)}, Attempts: 1, At: engT0})
	}
	if _, err := db.SaveChanges(cs, nil, campaignd.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	// A scheduled broadcast whose timer was never written (crash before Admit).
	sched := mustBroadcast(t, db, 3, func(b *campaignd.Broadcast) {
		b.Status, b.ScheduledAt = campaignd.StatusScheduled, engT0.Add(time.Minute)
	})
	h := newHarness(t, db, nil, nil).start(t)
	h.waitStatus(t, sending.ID, campaignd.StatusCompleted)
	for i := range 40 {
		want := 1
		if i < 10 || i == 13 {
			want = 0
		}
		if c := h.sender.Count(dest(i)); c != want {
			t.Fatalf("message %d submitted %d times after the restart, want %d", i, c, want)
		}
	}
	testenv.Wait(t, "duplicates counted", func() bool {
		h.events.mu.Lock()
		defer h.events.mu.Unlock()
		return h.events.duplicates == 3
	})
	if due, ok, _ := h.wheel.Due(engine.TimerBroadcast, strconv.FormatUint(sched.ID, 10)); !ok || !due.Equal(sched.ScheduledAt) {
		t.Fatalf("scheduled broadcast timer = %v %v", due, ok)
	}
	h.clk.Advance(time.Minute)
	h.waitStatus(t, sched.ID, campaignd.StatusCompleted)
}

func TestEngineAdmit(t *testing.T) {
	h := newHarness(t, nil, nil, nil).start(t)
	b := mustBroadcast(t, h.db, 7, func(b *campaignd.Broadcast) { b.Status = campaignd.StatusSending })
	if err := h.eng.Admit(b); err != nil {
		t.Fatal(err)
	}
	h.waitStatus(t, b.ID, campaignd.StatusCompleted)
	s := mustBroadcast(t, h.db, 2, func(b *campaignd.Broadcast) {
		b.Status, b.ScheduledAt = campaignd.StatusScheduled, engT0.Add(time.Hour)
	})
	if err := h.eng.Admit(s); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(time.Hour)
	h.waitStatus(t, s.ID, campaignd.StatusCompleted)
}

func TestEngineProgress(t *testing.T) {
	block := make(chan struct{})
	s := &fakeSender{}
	var n atomic.Int32
	s.SubmitFn = func(ctx context.Context, m campaignd.OutMessage) ([]string, error) {
		if n.Add(1) > 30 {
			<-block
			return nil, errors.New("closing")
		}
		return []string{"p" + m.Dest}, nil
	}
	h := newHarness(t, nil, s, nil).start(t)
	defer close(block)
	b := mustBroadcast(t, h.db, 100, nil)
	h.mustAct(t, b.ID, campaignd.ActionSend, time.Time{})
	testenv.Wait(t, "30 submits", func() bool { return h.broadcast(t, b.ID).Counts.Submitted == 30 })
	h.clk.Advance(time.Second)
	rate, eta := h.eng.Progress(b.ID)
	if rate != 3 || (eta < 23*time.Second || eta > 24*time.Second) {
		t.Fatalf("progress = %v/s, eta %v", rate, eta)
	}
}
