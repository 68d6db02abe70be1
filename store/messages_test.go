package store_test

import (
	"testing"
	"time"

	"campaignd"
	"campaignd/store"
)

// TestSaveChangesCountsAndSettledIndex: the counts follow the changes and
// receipts, and settled messages are indexed under their day.
func TestSaveChangesCountsAndSettledIndex(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		b := ingest(t, db, "a.csv", 5, "")
		at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
		day := func(t time.Time) string { return t.Format("20060102") }
		m3, err := db.Message(b.ID, 3)
		if err != nil || m3.State != campaignd.StateQueued || m3.TrackingID != b.TrackingBase+3 {
			t.Fatalf("Message(3) = %+v, %v", m3, err)
		}
		opts := campaignd.SaveOptions{DayOf: day, IDFormat: campaignd.IDFormatExact}
		_, err = db.SaveChanges([]campaignd.Change{
			{BroadcastID: b.ID, Index: 3, From: campaignd.StateQueued, To: campaignd.StateSubmitted, SMSCIDs: []string{"17"}, At: at},
			{BroadcastID: b.ID, Index: 1, From: campaignd.StateQueued, To: campaignd.StateRejected, ErrorCode: 0x45, At: at},
		}, nil, opts)
		if err != nil {
			t.Fatal(err)
		}
		res, err := db.SaveChanges(nil, []campaignd.ReceiptIn{{ID: "17", Stat: campaignd.StateDelivered, At: at.Add(time.Hour)}}, opts)
		if err != nil || res.Receipts[0] != campaignd.ReceiptMatched {
			t.Fatalf("receipt: %+v, %v", res, err)
		}
		got, _ := db.Broadcast(b.ID)
		want := campaignd.Counts{Total: 5, Queued: 3, Delivered: 1, Failed: 1}
		if got.Counts != want {
			t.Fatalf("counts = %+v, want %+v", got.Counts, want)
		}
		var states []campaignd.MessageState
		db.Messages(b.ID, 0, func(m *campaignd.Message) error { states = append(states, m.State); return nil })
		if len(states) != 5 || states[1] != campaignd.StateRejected || states[3] != campaignd.StateDelivered || states[4] != campaignd.StateQueued {
			t.Fatalf("states = %v", states)
		}
		var tracking []uint64
		db.ReportMessages("20261121", func(m *campaignd.Message) error { tracking = append(tracking, m.TrackingID); return nil })
		if len(tracking) != 2 || tracking[0] != b.TrackingBase+1 || tracking[1] != b.TrackingBase+3 {
			t.Fatalf("settled = %v (base %d)", tracking, b.TrackingBase)
		}
	})
}
