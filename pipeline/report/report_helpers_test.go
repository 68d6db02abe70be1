package report_test

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"campaignd"
	"campaignd/store"
)

// -update rewrites golden files. It is registered only if another test file
// of the package has not done so already.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

func reportUpdateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

var reportLoc = mustLoadLocation("America/Mexico_City")

func mustLoadLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// reportTestDB opens an in-memory store (dir "") or an on-disk one, closed
// at the end of the test.
func reportTestDB(tb testing.TB, dir string) *store.DB {
	tb.Helper()
	db, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// reportBroadcast stores a broadcast with rows, as ingest would.
func reportBroadcast(tb testing.TB, db *store.DB, name, sender string, rows []campaignd.Row) *campaignd.Broadcast {
	tb.Helper()
	u := &campaignd.Upload{Path: "/" + name + ".csv", FileName: name + ".csv", ReceivedAt: time.Now()}
	job, err := db.CreateUpload(u)
	if err != nil {
		tb.Fatal(err)
	}
	w, err := db.NewBroadcastWriter(job)
	if err != nil {
		tb.Fatal(err)
	}
	for i := range rows {
		if rows[i].Line == 0 {
			rows[i].Line = i + 2
		}
		if rows[i].Text == "" {
			rows[i].Text, rows[i].Encoding, rows[i].Segments = "hola", "GSM-7", 1
		}
		if err := w.Add(&rows[i]); err != nil {
			tb.Fatal(err)
		}
	}
	b := &campaignd.Broadcast{Name: name, Sender: sender, Status: campaignd.StatusSending, CreatedAt: time.Now()}
	if err := w.Commit(b, &job.Upload); err != nil {
		tb.Fatal(err)
	}
	return b
}

// settle is one state change to apply to message idx of a broadcast.
type reportChange struct {
	idx       uint32
	state     campaignd.MessageState
	submitted time.Time
	settled   time.Time
	parts     []campaignd.MessageState
}

func reportDayIn(loc *time.Location) func(time.Time) string {
	return func(t time.Time) string { return t.In(loc).Format("20060102") }
}

// reportSettle applies changes to broadcast b's messages through the
// engine's write, indexing settled ones by their local day: a change with a
// submit time is a submit (one id per part) followed by a receipt per part
// (none when it stays submitted); one without is a direct change (a final
// submit error, a cancel).
func reportSettle(tb testing.TB, db *store.DB, b *campaignd.Broadcast, changes ...reportChange) {
	tb.Helper()
	var cs []campaignd.Change
	for _, c := range changes {
		m, err := db.Message(b.ID, c.idx)
		if err != nil {
			tb.Fatal(err)
		}
		cs = append(cs, campaignd.Change{BroadcastID: b.ID, Index: c.idx, From: m.State})
	}
	reportApply(tb, db, b.TrackingBase, cs, changes)
}

// reportApply makes each message of cs (From set) what the change of the
// same index in changes says, in two SaveChanges: the changes, then the
// receipts.
func reportApply(tb testing.TB, db *store.DB, trackingBase uint64, cs []campaignd.Change, changes []reportChange) {
	tb.Helper()
	var rs []campaignd.ReceiptIn
	for i, c := range changes {
		ch := &cs[i]
		if c.submitted.IsZero() {
			ch.To, ch.At = c.state, c.settled
			continue
		}
		parts := c.parts
		if len(parts) == 0 {
			parts = []campaignd.MessageState{c.state}
		}
		tracking := trackingBase + uint64(c.idx)
		for p := range parts {
			id := fmt.Sprintf("%x", tracking)
			if len(parts) > 1 {
				id = fmt.Sprintf("%x-%d", tracking, p)
			}
			ch.SMSCIDs = append(ch.SMSCIDs, id)
			if c.state != campaignd.StateSubmitted {
				rs = append(rs, campaignd.ReceiptIn{ID: id, Stat: parts[p], At: c.settled})
			}
		}
		ch.To, ch.At = campaignd.StateSubmitted, c.submitted
	}
	opts := campaignd.SaveOptions{DayOf: reportDayIn(reportLoc), IDFormat: campaignd.IDFormatExact}
	res, err := db.SaveChanges(cs, nil, opts)
	if err != nil {
		tb.Fatal(err)
	}
	for i, ok := range res.Applied {
		if !ok {
			tb.Fatalf("change %+v not applied", cs[i])
		}
	}
	if len(rs) == 0 {
		return
	}
	if res, err = db.SaveChanges(nil, rs, opts); err != nil {
		tb.Fatal(err)
	}
	for i, out := range res.Receipts {
		if out != campaignd.ReceiptMatched {
			tb.Fatalf("receipt %+v: %s", rs[i], out)
		}
	}
}

// reportClock is a settable clock.
type reportClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *reportClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *reportClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *reportClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// reportTimers is a timing wheel run by hand: Fire runs every timer due at
// the clock's time. A handler returning nil deletes its timer (unless it
// moved it), an error keeps it for a retry a minute later.
type reportTimers struct {
	mu       sync.Mutex
	clock    *reportClock
	handlers map[string]func(ctx context.Context, id string, due time.Time) error
	timers   map[string]time.Time // kind + " " + id
	fired    []string
}

func newReportTimers(c *reportClock) *reportTimers {
	return &reportTimers{clock: c, handlers: map[string]func(context.Context, string, time.Time) error{}, timers: map[string]time.Time{}}
}

func (f *reportTimers) Handle(kind string, fn func(ctx context.Context, id string, due time.Time) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[kind] = fn
}

func (f *reportTimers) Schedule(kind, id string, due time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.timers[kind+" "+id] = due
	return nil
}

// Pending returns the pending timers of kind as "id@due", sorted.
func (f *reportTimers) Pending(kind string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k, due := range f.timers {
		if strings.HasPrefix(k, kind+" ") {
			out = append(out, strings.TrimPrefix(k, kind+" ")+"@"+due.In(reportLoc).Format("2006-01-02T15:04"))
		}
	}
	sort.Strings(out)
	return out
}

// Fire runs the due timers, earliest first, until none is due, and returns
// the "kind id" of each one fired.
func (f *reportTimers) Fire(tb testing.TB) []string {
	tb.Helper()
	var fired []string
	for i := 0; ; i++ {
		if i > 1000 {
			tb.Fatal("timers keep firing")
		}
		now := f.clock.Now()
		f.mu.Lock()
		var next string
		var nextDue time.Time
		for k, due := range f.timers {
			if !due.After(now) && (next == "" || due.Before(nextDue) || due.Equal(nextDue) && k < next) {
				next, nextDue = k, due
			}
		}
		f.mu.Unlock()
		if next == "" {
			return fired
		}
		kind, id, _ := strings.Cut(next, " ")
		fn := f.handlers[kind]
		if fn == nil {
			tb.Fatalf("no handler for timer kind %q", kind)
		}
		err := fn(context.Background(), id, nextDue)
		fired = append(fired, next)
		f.mu.Lock()
		if err != nil {
			f.timers[next] = now.Add(time.Minute)
		} else if f.timers[next].Equal(nextDue) {
			delete(f.timers, next)
		}
		f.mu.Unlock()
		if err != nil {
			return fired // a retry is for later; do not spin
		}
	}
}
