package store_test

import (
	"fmt"
	"testing"
	"time"

	"campaignd"
	"campaignd/store"
)

func TestReports(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		if _, err := db.Report("20261121"); campaignd.ErrorCode(err) != campaignd.ENOTFOUND {
			t.Fatalf("Report before save: err = %v, want not found", err)
		}
		at := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
		for _, day := range []string{"2026-11-21", "2026-11-19", "2026-11-20"} {
			r := &campaignd.Report{Day: day, FileName: "r.csv", Rows: 3, ProducedAt: at, PushState: campaignd.PushPending}
			if err := db.SaveReport(r); err != nil {
				t.Fatal(err)
			}
		}
		r, err := db.Report("2026-11-20")
		if err != nil || r.Day != "2026-11-20" || r.Rows != 3 || !r.ProducedAt.Equal(at) {
			t.Fatalf("Report = %+v, %v", r, err)
		}
		r.PushState, r.Attempts = campaignd.PushDone, 2
		if err := db.SaveReport(r); err != nil {
			t.Fatal(err)
		}
		if r, _ := db.Report("20261120"); r.PushState != campaignd.PushDone || r.Attempts != 2 {
			t.Fatalf("after update: %+v", r)
		}
		all, err := db.Reports(0)
		if err != nil || len(all) != 3 || all[0].Day != "2026-11-21" || all[2].Day != "2026-11-19" {
			t.Fatalf("Reports(0) = %v, %v; want newest first", all, err)
		}
		if last, _ := db.Reports(1); len(last) != 1 || last[0].Day != "2026-11-21" {
			t.Fatalf("Reports(1) = %v", last)
		}
		for _, bad := range []string{"", "2026-11", "2026x1121", "../../x"} {
			if err := db.SaveReport(&campaignd.Report{Day: bad}); campaignd.ErrorCode(err) != campaignd.EINVALID {
				t.Errorf("SaveReport(%q) err = %v, want invalid", bad, err)
			}
		}
	})
}

// TestReportMessages checks the report's index scan against a plain scan of
// every message: the final ones settled on the day, in Tracking ID order.
func TestReportMessages(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		day := func(t time.Time) string { return t.UTC().Format("20060102") }
		on := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
		var all []*campaignd.Broadcast
		for i, n := range []int{600, 5, 1000, 1} {
			all = append(all, ingest(t, db, fmt.Sprintf("b%d.csv", i), n, ""))
		}
		opts := campaignd.SaveOptions{DayOf: day, IDFormat: campaignd.IDFormatExact}
		for k, b := range all {
			var cs []campaignd.Change
			var rs []campaignd.ReceiptIn
			for i := 0; i < int(b.Counts.Total); i++ {
				// Settle a varying pattern: runs, gaps of every size, other days.
				if (i*7+k)%5 == 0 || i > 700 && i < 760 {
					continue
				}
				settled := on
				if i%13 == 0 {
					settled = on.Add(24 * time.Hour)
				}
				c := campaignd.Change{BroadcastID: b.ID, Index: uint32(i), From: campaignd.StateQueued}
				switch {
				case i%11 == 0 && i%17 != 0: // a final submit error
					c.To, c.At = campaignd.StateRejected, settled
				default:
					id := fmt.Sprintf("m%d-%d", b.ID, i)
					c.To, c.SMSCIDs, c.At = campaignd.StateSubmitted, []string{id}, on.Add(time.Duration(i)*time.Millisecond)
					if i%17 != 0 { // else it awaits its receipt
						rs = append(rs, campaignd.ReceiptIn{ID: id, Stat: campaignd.StateDelivered, At: settled})
					}
				}
				cs = append(cs, c)
			}
			res, err := db.SaveChanges(cs, nil, opts)
			if err != nil {
				t.Fatal(err)
			}
			for i, ok := range res.Applied {
				if !ok {
					t.Fatalf("change %+v not applied", cs[i])
				}
			}
			if res, err = db.SaveChanges(nil, rs, opts); err != nil {
				t.Fatal(err)
			}
			for i, out := range res.Receipts {
				if out != campaignd.ReceiptMatched {
					t.Fatalf("receipt %+v: %s", rs[i], out)
				}
			}
		}
		collect := func(each func(string, func(*campaignd.Message) error) error, d string) []string {
			var out []string
			if err := each(d, func(m *campaignd.Message) error {
				out = append(out, fmt.Sprintf("%d %d/%d %s %s %d %s", m.TrackingID, m.BroadcastID, m.Index, m.State, m.RecipientRaw, m.SubmittedAt.UnixMilli(), m.SettledAt))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return out
		}
		for _, d := range []string{"20261121", "20261122", "20261123"} {
			plain := func(d string, fn func(*campaignd.Message) error) error {
				for _, b := range all { // broadcast order is Tracking ID order
					err := db.Messages(b.ID, 0, func(m *campaignd.Message) error {
						if m.State.Final() && day(m.SettledAt) == d {
							return fn(m)
						}
						return nil
					})
					if err != nil {
						return err
					}
				}
				return nil
			}
			want, got := collect(plain, d), collect(db.ReportMessages, d)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s: ReportMessages gives %d messages, a plain scan %d; first difference in\n%v\n%v", d, len(got), len(want), got, want)
			}
			if d != "20261123" && len(got) < 50 {
				t.Fatalf("%s: only %d messages", d, len(got))
			}
		}
	})
}
