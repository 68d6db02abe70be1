package store_test

import (
	"slices"
	"testing"
	"time"

	"campaignd"
	"campaignd/store"
)

// TestSaveChangesTransitions applies one change (after the steps that lead
// to its From state) to a fresh one-message broadcast and checks whether it
// was applied, the message's state, counts and settled list, and whether it
// is on its settle day's report index.
func TestSaveChangesTransitions(t *testing.T) {
	const (
		q   = campaignd.StateQueued
		s   = campaignd.StateSubmitted
		dlv = campaignd.StateDelivered
		und = campaignd.StateUndeliverable
		unk = campaignd.StateUnknown
		rej = campaignd.StateRejected
		can = campaignd.StateCancelled
	)
	at := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	day := at.Format("20060102")
	dayOf := func(t time.Time) string { return t.UTC().Format("20060102") }
	submit := func(ids ...string) campaignd.Change {
		return campaignd.Change{From: q, To: s, Attempts: 1, SMSCIDs: ids, At: at}
	}
	for _, tc := range []struct {
		name     string
		before   []campaignd.Change // applied first, each must apply
		receipts []campaignd.ReceiptIn
		change   campaignd.Change
		applied  bool
		want     campaignd.MessageState
		settled  bool // listed in ChangeResult.Settled and on the day's report
		earlier  bool // settled by a step before: on the report, not in Settled
		attempts int
	}{
		{name: "queued to submitted", change: submit("a1"), applied: true, want: s, attempts: 1},
		{name: "stale From is not applied", change: campaignd.Change{From: s, To: unk, At: at}, want: q},
		{name: "repeated submit is not applied", before: []campaignd.Change{submit("a1")}, change: submit("a2"), want: s, attempts: 1},
		{name: "queued back to queued (a retry)", change: campaignd.Change{From: q, To: q, Attempts: 2, At: at}, applied: true, want: q, attempts: 2},
		{name: "refused at submit", change: campaignd.Change{From: q, To: rej, Attempts: 1, ErrorCode: 0x0B, At: at}, applied: true, want: rej, settled: true, attempts: 1},
		{name: "cancelled while queued", change: campaignd.Change{From: q, To: can, At: at}, applied: true, want: can},
		{name: "receipt timeout: no receipt is UNKNOWN", before: []campaignd.Change{submit("a1")},
			change: campaignd.Change{From: s, To: unk, At: at}, applied: true, want: unk, settled: true, attempts: 1},
		{name: "receipt timeout: a worse part wins", before: []campaignd.Change{submit("a1", "a2")},
			receipts: []campaignd.ReceiptIn{{ID: "a2", Stat: und, At: at}},
			change:   campaignd.Change{From: s, To: unk, At: at}, applied: true, want: und, settled: true, attempts: 1},
		{name: "settled message ignores a late change", before: []campaignd.Change{submit("a1"), {From: s, To: unk, At: at}},
			change: campaignd.Change{From: s, To: dlv, At: at}, want: unk, earlier: true, attempts: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, db *store.DB) {
				b := ingest(t, db, "t.csv", 1, "x")
				opts := campaignd.SaveOptions{DayOf: dayOf, IDFormat: campaignd.IDFormatExact}
				for i, c := range tc.before {
					c.BroadcastID = b.ID
					res, err := db.SaveChanges([]campaignd.Change{c}, nil, opts)
					if err != nil || !res.Applied[0] {
						t.Fatalf("step %d %s→%s: %+v, %v", i, c.From, c.To, res, err)
					}
				}
				if len(tc.receipts) > 0 {
					if _, err := db.SaveChanges(nil, tc.receipts, opts); err != nil {
						t.Fatal(err)
					}
				}
				c := tc.change
				c.BroadcastID = b.ID
				res, err := db.SaveChanges([]campaignd.Change{c}, nil, opts)
				if err != nil {
					t.Fatal(err)
				}
				if res.Applied[0] != tc.applied {
					t.Errorf("applied = %v, want %v", res.Applied[0], tc.applied)
				}
				if got := len(res.Settled) == 1 && res.Settled[0].State == tc.want; got != (tc.applied && (tc.settled || tc.want == can)) {
					t.Errorf("settled %+v, want %s listed: %v", res.Settled, tc.want, tc.applied && (tc.settled || tc.want == can))
				}
				m, err := db.Message(b.ID, 0)
				if err != nil {
					t.Fatal(err)
				}
				if m.State != tc.want || m.Attempts != tc.attempts {
					t.Errorf("message %s after %d attempts, want %s after %d", m.State, m.Attempts, tc.want, tc.attempts)
				}
				got, err := db.Broadcast(b.ID)
				if err != nil {
					t.Fatal(err)
				}
				if sum := got.Counts.Queued + got.Counts.Submitted + got.Counts.Delivered + got.Counts.Failed + got.Counts.Unknown + got.Counts.Cancelled + got.Counts.Suppressed; sum != 1 || got.Counts.Total != 1 {
					t.Errorf("counts %+v: the one message counted %d times", got.Counts, sum)
				}
				var reported []uint64
				if err := db.ReportMessages(day, func(m *campaignd.Message) error { reported = append(reported, m.TrackingID); return nil }); err != nil {
					t.Fatal(err)
				}
				if want := tc.settled || tc.earlier; (len(reported) == 1) != want || want && !slices.Equal(reported, []uint64{m.TrackingID}) {
					t.Errorf("report of %s lists %v; want the message listed: %v", day, reported, want)
				}
			})
		})
	}
}
