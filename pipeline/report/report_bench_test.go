package report_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"campaignd"
	"campaignd/store"
)

// BenchmarkReport1M produces the report of a day with 1,000,000 settled
// messages (four broadcasts) from an on-disk store. Bar: ≤ 10 s (SPEC §10).
func BenchmarkReport1M(b *testing.B) {
	const perBroadcast, broadcasts = 250_000, 4
	db := reportTestDB(b, b.TempDir())
	start := time.Now()
	states := []campaignd.MessageState{campaignd.StateDelivered, campaignd.StateDelivered, campaignd.StateUndeliverable, campaignd.StateUnknown, campaignd.StateRejected}
	for k := 0; k < broadcasts; k++ {
		rows := make([]campaignd.Row, perBroadcast)
		for i := range rows {
			rows[i] = campaignd.Row{Recipient: fmt.Sprintf("52551%07d", i), RecipientRaw: fmt.Sprintf("55 1%07d", i),
				MemberID: fmt.Sprintf("58%08d", i), Text: "Hola, tienes 100 puntos", Encoding: "GSM-7", Segments: 1}
		}
		bc := reportBroadcast(b, db, fmt.Sprintf("Campaña %d, \"noviembre\"", k), "28776", rows)
		base := reportAt(21, 8, 0, 0, 0)
		const batch = 2000
		cs := make([]campaignd.Change, 0, batch)
		changes := make([]reportChange, 0, batch)
		for i := 0; i < perBroadcast; i++ {
			sub := base.Add(time.Duration(i) * 7 * time.Millisecond)
			c := reportChange{idx: uint32(i), state: states[i%len(states)], submitted: sub, settled: sub.Add(2 * time.Second)}
			if c.state == campaignd.StateRejected {
				c.submitted = time.Time{}
			}
			cs = append(cs, campaignd.Change{BroadcastID: bc.ID, Index: uint32(i), From: campaignd.StateQueued})
			changes = append(changes, c)
			if len(cs) == batch || i == perBroadcast-1 {
				reportApply(b, db, bc.TrackingBase, cs, changes)
				cs, changes = cs[:0], changes[:0]
			}
		}
	}
	if err := db.Sync(); err != nil {
		b.Fatal(err)
	}
	b.Logf("setup: 1,000,000 settled messages in %v", time.Since(start).Round(time.Millisecond))
	clock := &reportClock{t: reportAt(22, 1, 0, 0, 0)}
	r, _ := newTestReporter(b, db, clock, newReportTimers(clock), nil, nil)
	for b.Loop() {
		// Each iteration produces the day: archive written and fsynced,
		// state recorded (then forgotten, so the next one produces again),
		// and the archive served.
		rep, err := r.ReportCSV(context.Background(), "2026-11-21", io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Rows != perBroadcast*broadcasts {
			b.Fatalf("rows = %d", rep.Rows)
		}
		b.ReportMetric(float64(rep.Bytes)/1e6, "MB")
		if err := dropReports(db); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(perBroadcast*broadcasts)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// dropReports removes the stored reports (p/ keys), so the next iteration
// produces the day again.
func dropReports(db *store.DB) error {
	return db.KV().Update(func(txn store.Txn) error {
		var keys [][]byte
		err := txn.Scan(store.ScanOptions{Prefix: []byte("p/"), KeysOnly: true}, func(k, _ []byte) (bool, error) {
			keys = append(keys, k)
			return true, nil
		})
		for _, k := range keys {
			if err == nil {
				err = txn.Delete(k)
			}
		}
		return err
	})
}
