package report_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"campaignd"
	"campaignd/pipeline/report"
	"campaignd/store"
)

// reportPusher is a Pusher that fails while fail is set and records what it
// received.
type reportPusher struct {
	mu     sync.Mutex
	fail   error
	calls  int
	pushed map[string][]byte
}

func (p *reportPusher) Push(ctx context.Context, name string, r io.Reader, size int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.fail != nil {
		return p.fail
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if int64(len(b)) != size {
		return errors.New("size mismatch")
	}
	if p.pushed == nil {
		p.pushed = map[string][]byte{}
	}
	p.pushed[name] = b
	return nil
}

func (p *reportPusher) setFail(err error) {
	p.mu.Lock()
	p.fail = err
	p.mu.Unlock()
}

type reportEventLog struct {
	mu      sync.Mutex
	results []string
}

func (e *reportEventLog) ReportPushed(result string, at time.Time) {
	e.mu.Lock()
	e.results = append(e.results, result)
	e.mu.Unlock()
}

func mustReport(tb testing.TB, db *store.DB, day string) *campaignd.Report {
	tb.Helper()
	r, err := db.Report(day)
	if err != nil {
		tb.Fatalf("report %s: %v", day, err)
	}
	return r
}

func TestReportProducedAtReportTimeForPreviousDay(t *testing.T) {
	db := reportTestDB(t, "")
	b := reportBroadcast(t, db, "c", "28776", []campaignd.Row{{Recipient: "525512345601", RecipientRaw: "5512345601"}, {Recipient: "525512345602", RecipientRaw: "5512345602"}})
	reportSettle(t, db, b, reportChange{idx: 0, state: campaignd.StateDelivered, submitted: reportAt(20, 9, 0, 0, 0), settled: reportAt(20, 9, 0, 1, 0)})
	clock := &reportClock{t: reportAt(20, 12, 0, 0, 0)}
	timers := newReportTimers(clock)
	dir := filepath.Join(t.TempDir(), "reports")
	r, err := report.NewReporter(report.Options{Store: db, Timers: timers, Dir: dir, Location: reportLoc, Time: "01:30", Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// First start: no earlier day had settled messages, so only the current
	// day's timer, due at 01:30 the next day.
	if got, want := timers.Pending(report.ReportTimerKind), []string{"20261120@2026-11-21T01:30"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("timers = %v, want %v", got, want)
	}
	clock.Set(reportAt(21, 1, 29, 59, 999))
	if fired := timers.Fire(t); len(fired) != 0 {
		t.Fatalf("fired early: %v", fired)
	}
	// Settled during the day after noon, still in the day's report.
	reportSettle(t, db, b, reportChange{idx: 1, state: campaignd.StateUndeliverable, submitted: reportAt(20, 9, 0, 0, 0), settled: reportAt(20, 23, 59, 59, 999)})
	clock.Set(reportAt(21, 1, 30, 0, 0))
	if fired := timers.Fire(t); !reflect.DeepEqual(fired, []string{"report 20261120"}) {
		t.Fatalf("fired %v", fired)
	}
	rep := mustReport(t, db, "20261120")
	if rep.Rows != 2 || rep.FileName != "report_20261120.csv" || rep.PushState != campaignd.PushNone || !rep.ProducedAt.Equal(clock.Now()) {
		t.Fatalf("report = %+v", rep)
	}
	if _, err := os.Stat(filepath.Join(dir, "report_20261120.csv")); err != nil {
		t.Fatal(err)
	}
	if got, want := timers.Pending(report.ReportTimerKind), []string{"20261121@2026-11-22T01:30"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("next timers = %v, want %v", got, want)
	}
	// The next day, with nothing settled, gives a header-only file.
	clock.Set(reportAt(22, 1, 30, 0, 500))
	timers.Fire(t)
	if rep := mustReport(t, db, "20261121"); rep.Rows != 0 || rep.Bytes != int64(len(campaignd.ReportHeader)+1) {
		t.Fatalf("empty day report = %+v", rep)
	}
}

func TestReportMissedDaysProducedAtStartOnce(t *testing.T) {
	db := reportTestDB(t, "")
	b := reportBroadcast(t, db, "c", "28776", []campaignd.Row{{Recipient: "525512345601", RecipientRaw: "5512345601"}, {Recipient: "525512345602", RecipientRaw: "5512345602"}})
	reportSettle(t, db, b,
		reportChange{idx: 0, state: campaignd.StateDelivered, submitted: reportAt(18, 9, 0, 0, 0), settled: reportAt(18, 9, 0, 1, 0)},
		reportChange{idx: 1, state: campaignd.StateDelivered, submitted: reportAt(20, 9, 0, 0, 0), settled: reportAt(20, 9, 0, 1, 0)},
	)
	// The process was down when the 18th's report was due: first start on
	// the 19th at 10:00 produces it, as the 18th has settled messages.
	clock := &reportClock{t: reportAt(19, 10, 0, 0, 0)}
	timers := newReportTimers(clock)
	r, dir := newTestReporter(t, db, clock, timers, nil, nil)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := timers.Pending(report.ReportTimerKind), []string{"20261118@2026-11-19T01:00", "20261119@2026-11-20T01:00"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("timers = %v, want %v", got, want)
	}
	timers.Fire(t)
	first := mustReport(t, db, "20261118")
	if first.Rows != 1 {
		t.Fatalf("18th = %+v", first)
	}

	// Down from the 19th to the 23rd at 10:00, and the timers were lost:
	// a new Reporter over the same store produces the 19th to the 22nd,
	// each once, and nothing before.
	clock.Set(reportAt(23, 10, 0, 0, 0))
	timers2 := newReportTimers(clock)
	r2, err := report.NewReporter(report.Options{Store: db, Timers: timers2, Dir: dir, Location: reportLoc, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	fired := timers2.Fire(t)
	want := []string{"report 20261119", "report 20261120", "report 20261121", "report 20261122"}
	if !reflect.DeepEqual(fired, want) {
		t.Fatalf("fired %v, want %v", fired, want)
	}
	for day, rows := range map[string]int64{"20261119": 0, "20261120": 1, "20261121": 0, "20261122": 0} {
		if rep := mustReport(t, db, day); rep.Rows != rows || !rep.ProducedAt.Equal(clock.Now()) {
			t.Errorf("%s = %+v, want %d rows produced now", day, rep, rows)
		}
	}
	if again := mustReport(t, db, "20261118"); !again.ProducedAt.Equal(first.ProducedAt) {
		t.Fatalf("18th produced twice: %v then %v", first.ProducedAt, again.ProducedAt)
	}

	// Restart again the same day, with the old timers still there too: no
	// day is produced twice.
	if err := r2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	timers2.Fire(t)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	timers.Schedule(report.ReportTimerKind, "20261120", reportAt(21, 1, 0, 0, 0))
	timers.Fire(t)
	for _, day := range []string{"20261119", "20261120", "20261121", "20261122"} {
		if rep := mustReport(t, db, day); !rep.ProducedAt.Equal(reportAt(23, 10, 0, 0, 0)) {
			t.Errorf("%s produced again at %v", day, rep.ProducedAt)
		}
	}
	all, _ := db.Reports(0)
	if len(all) != 5 {
		t.Fatalf("%d reports, want 5", len(all))
	}
	if got, want := timers2.Pending(report.ReportTimerKind), []string{"20261123@2026-11-24T01:00"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("timers after catch-up = %v, want %v", got, want)
	}
}

func TestReportCatchUpIsBounded(t *testing.T) {
	db := reportTestDB(t, "")
	if err := db.SaveReport(&campaignd.Report{Day: "2026-01-01", FileName: "report_20260101.csv", PushState: campaignd.PushNone}); err != nil {
		t.Fatal(err)
	}
	clock := &reportClock{t: reportAt(21, 10, 0, 0, 0)}
	timers := newReportTimers(clock)
	r, _ := newTestReporter(t, db, clock, timers, nil, nil)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := timers.Pending(report.ReportTimerKind)
	if len(p) != 32 || !strings.HasPrefix(p[0], "20261021@") || !strings.HasPrefix(p[31], "20261121@") {
		t.Fatalf("%d timers, %v … %v; want the 31 days back and today", len(p), p[0], p[len(p)-1])
	}
}

func TestReportTodayPartialOnDemand(t *testing.T) {
	db := reportTestDB(t, "")
	b := reportBroadcast(t, db, "c", "28776", []campaignd.Row{{Recipient: "525512345601", RecipientRaw: "5512345601"}, {Recipient: "525512345602", RecipientRaw: "5512345602"}})
	reportSettle(t, db, b, reportChange{idx: 0, state: campaignd.StateDelivered, submitted: reportAt(21, 9, 0, 0, 0), settled: reportAt(21, 9, 0, 1, 0)})
	clock := &reportClock{t: reportAt(21, 12, 0, 0, 0)}
	timers := newReportTimers(clock)
	pusher := &reportPusher{}
	events := &reportEventLog{}
	r, dir := newTestReporter(t, db, clock, timers, pusher, events)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	rep, err := r.ReportCSV(context.Background(), "2026-11-21", &buf)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Partial || rep.Rows != 1 || rep.FileName != "report_20261121-partial.csv" || strings.Count(buf.String(), "\n") != 2 {
		t.Fatalf("partial = %+v\n%s", rep, buf.String())
	}
	rep, err = r.PushReport(context.Background(), "2026-11-21", "admin", "127.0.0.1:5000")
	if err != nil || !rep.Partial || rep.PushState != campaignd.PushDone {
		t.Fatalf("partial push = %+v, %v", rep, err)
	}
	if !bytes.Equal(pusher.pushed["report_20261121-partial.csv"], buf.Bytes()) {
		t.Fatalf("pushed %q", pusher.pushed)
	}
	// Not recorded as the day's report, no archive, no metric.
	if _, err := db.Report("20261121"); campaignd.ErrorCode(err) != campaignd.ENOTFOUND {
		t.Fatalf("partial recorded: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("archive dir has %v", entries)
	}
	if len(events.results) != 0 {
		t.Fatalf("events %v", events.results)
	}
	if log, _ := db.AuditLog(0); len(log) != 1 || log[0].User != "admin" || log[0].Action != "push_report" || !strings.Contains(log[0].Detail, "pushed") {
		t.Fatalf("audit = %+v", log)
	}

	// The real report is still produced after the day ends, with what was
	// settled later, and pushed under its own name.
	reportSettle(t, db, b, reportChange{idx: 1, state: campaignd.StateRejected, settled: reportAt(21, 18, 0, 0, 0)})
	clock.Set(reportAt(22, 1, 0, 0, 0))
	timers.Fire(t)
	if rep := mustReport(t, db, "20261121"); rep.Rows != 2 || rep.Partial || rep.PushState != campaignd.PushDone || rep.Attempts != 1 {
		t.Fatalf("day report = %+v", rep)
	}
	if got := pusher.pushed["report_20261121.csv"]; strings.Count(string(got), "\n") != 3 {
		t.Fatalf("pushed day report %q", got)
	}
	if !reflect.DeepEqual(events.results, []string{report.ReportPushOK}) {
		t.Fatalf("events %v", events.results)
	}
	// Yesterday before report.time is still provisional (partial); the
	// future is not found; bad days are invalid.
	clock.Set(reportAt(23, 0, 30, 0, 0))
	if rep, err := r.ReportCSV(context.Background(), "2026-11-22", io.Discard); err != nil || !rep.Partial {
		t.Fatalf("yesterday before report.time: %+v, %v", rep, err)
	}
	if _, err := r.ReportCSV(context.Background(), "2026-11-24", io.Discard); campaignd.ErrorCode(err) != campaignd.ENOTFOUND {
		t.Fatalf("future day: %v", err)
	}
	if _, err := r.ReportCSV(context.Background(), "21/11/2026", io.Discard); campaignd.ErrorCode(err) != campaignd.EINVALID {
		t.Fatalf("bad day: %v", err)
	}
}

func TestReportPushRetriesWithBackoffUntilSuccess(t *testing.T) {
	db := reportTestDB(t, "")
	clock := &reportClock{t: reportAt(22, 1, 0, 0, 0)}
	timers := newReportTimers(clock)
	pusher := &reportPusher{fail: errors.New("connection refused")}
	events := &reportEventLog{}
	r, _ := newTestReporter(t, db, clock, timers, pusher, events)
	if err := db.SaveReport(&campaignd.Report{Day: "2026-11-20", FileName: "report_20261120.csv", PushState: campaignd.PushDone}); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	timers.Fire(t) // produces the 21st, first push attempt fails
	var waits []time.Duration
	for i := 0; i < 8; i++ {
		rep := mustReport(t, db, "20261121")
		if rep.PushState != campaignd.PushFailed || rep.Attempts != i+1 || rep.LastError != "connection refused" {
			t.Fatalf("attempt %d: %+v", i+1, rep)
		}
		waits = append(waits, rep.NextAttempt.Sub(clock.Now()))
		clock.Set(rep.NextAttempt.Add(-time.Millisecond))
		if fired := timers.Fire(t); len(fired) != 0 {
			t.Fatalf("fired before the backoff: %v", fired)
		}
		clock.Set(rep.NextAttempt)
		timers.Fire(t)
	}
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour}
	if !reflect.DeepEqual(waits, want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
	pusher.setFail(nil)
	rep := mustReport(t, db, "20261121")
	clock.Set(rep.NextAttempt)
	timers.Fire(t)
	rep = mustReport(t, db, "20261121")
	if rep.PushState != campaignd.PushDone || rep.Attempts != 10 || rep.LastError != "" || !rep.PushedAt.Equal(clock.Now()) {
		t.Fatalf("after success: %+v", rep)
	}
	if p := timers.Pending(report.ReportPushTimerKind); len(p) != 0 {
		t.Fatalf("push timers left: %v", p)
	}
	if n := len(events.results); n != 10 || events.results[9] != report.ReportPushOK || events.results[0] != report.ReportPushError {
		t.Fatalf("events %v", events.results)
	}
	if pusher.pushed["report_20261121.csv"] == nil || len(pusher.pushed) != 1 {
		t.Fatalf("pushed %v", pusher.pushed)
	}
}

func TestReportManualPushSupersedesRetry(t *testing.T) {
	db := reportTestDB(t, "")
	clock := &reportClock{t: reportAt(22, 1, 0, 0, 0)}
	timers := newReportTimers(clock)
	pusher := &reportPusher{fail: errors.New("530 Login incorrect")}
	r, _ := newTestReporter(t, db, clock, timers, pusher, nil)
	if err := db.SaveReport(&campaignd.Report{Day: "2026-11-20", FileName: "report_20261120.csv", PushState: campaignd.PushDone}); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	timers.Fire(t)
	if rep := mustReport(t, db, "20261121"); rep.PushState != campaignd.PushFailed {
		t.Fatalf("%+v", rep)
	}
	// The operator fixes the password and pushes again before the retry.
	pusher.setFail(nil)
	clock.Add(30 * time.Second)
	rep, err := r.PushReport(context.Background(), "2026-11-21", "ops", "10.0.0.1:1")
	if err != nil || rep.PushState != campaignd.PushDone || rep.Attempts != 2 {
		t.Fatalf("manual push: %+v, %v", rep, err)
	}
	calls := pusher.calls
	clock.Add(time.Hour)
	timers.Fire(t) // the stale retry does nothing
	if pusher.calls != calls {
		t.Fatalf("stale retry pushed again (%d calls)", pusher.calls)
	}
	// Push again a pushed report: attempts start over; a failure retries.
	pusher.setFail(errors.New("timeout"))
	rep, err = r.PushReport(context.Background(), "2026-11-21", "ops", "10.0.0.1:1")
	if err != nil || rep.PushState != campaignd.PushFailed || rep.Attempts != 1 || rep.NextAttempt.Sub(clock.Now()) != time.Minute {
		t.Fatalf("push again: %+v, %v", rep, err)
	}
	if p := timers.Pending(report.ReportPushTimerKind); len(p) != 1 {
		t.Fatalf("push timers: %v", p)
	}
	// A past day that was never produced is produced, then pushed.
	pusher.setFail(nil)
	if rep, err := r.PushReport(context.Background(), "2026-10-01", "ops", "x"); err != nil || rep.PushState != campaignd.PushDone || rep.Partial {
		t.Fatalf("old day: %+v, %v", rep, err)
	}
	// Without a pusher, push is refused.
	local, _ := newTestReporter(t, db, clock, newReportTimers(clock), nil, nil)
	if _, err := local.PushReport(context.Background(), "2026-11-21", "ops", "x"); campaignd.ErrorCode(err) != campaignd.EINVALID {
		t.Fatalf("local-only push: %v", err)
	}
}

func TestReportPendingPushRearmedAtStart(t *testing.T) {
	db := reportTestDB(t, "")
	clock := &reportClock{t: reportAt(22, 9, 0, 0, 0)}
	next := reportAt(22, 9, 30, 0, 0)
	if err := db.SaveReport(&campaignd.Report{Day: "2026-11-21", FileName: "report_20261121.csv", PushState: campaignd.PushFailed, Attempts: 5, NextAttempt: next}); err != nil {
		t.Fatal(err)
	}
	timers := newReportTimers(clock)
	pusher := &reportPusher{}
	r, _ := newTestReporter(t, db, clock, timers, pusher, nil)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := timers.Pending(report.ReportPushTimerKind); len(p) != 1 || !strings.HasPrefix(p[0], "20261121@") {
		t.Fatalf("push timers %v", p)
	}
	clock.Set(next)
	timers.Fire(t)
	// The archive was missing (a restored store): it is written again and pushed.
	if rep := mustReport(t, db, "20261121"); rep.PushState != campaignd.PushDone || rep.Attempts != 6 {
		t.Fatalf("%+v", rep)
	}
	if got := pusher.pushed["report_20261121.csv"]; string(got) != campaignd.ReportHeader+"\n" {
		t.Fatalf("pushed %q", got)
	}
}
