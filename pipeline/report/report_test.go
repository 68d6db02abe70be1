package report_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"campaignd"
	"campaignd/pipeline/report"
	"campaignd/pipeline/wheel"
	"campaignd/store"
)

var (
	_ report.Store  = (*store.DB)(nil)
	_ report.Timers = (*wheel.Wheel)(nil)
)

// at is a local time in Mexico City on November 2026 with milliseconds.
func reportAt(day, h, m, s, ms int) time.Time {
	return time.Date(2026, 11, day, h, m, s, ms*int(time.Millisecond), reportLoc)
}

// reportGoldenDay fills db with the messages of the golden report: every final
// status, receipts, final submit errors, receipt timeouts, a multipart
// message, names with accents, commas and quotes, an empty member id,
// time stamps with .0/.12/.123 ms, plus messages that must not appear
// (queued, submitted, cancelled, settled on other days).
func reportGoldenDay(tb testing.TB, db *store.DB) {
	tb.Helper()
	b1 := reportBroadcast(tb, db, `Puntos Noviembre, "VIP"`, "28776", []campaignd.Row{
		{Recipient: "525512345601", RecipientRaw: "5512345601", MemberID: "581111"},
		{Recipient: "525512345602", RecipientRaw: "+52 (55) 1234-5602", MemberID: "582222"},
		{Recipient: "525512345603", RecipientRaw: "044 55 1234 5603", MemberID: ""},
		{Recipient: "525512345604", RecipientRaw: "55-1234-5604", MemberID: "000584"},
		{Recipient: "525512345605", RecipientRaw: "5512345605", MemberID: "585555", Segments: 3, Encoding: "UCS-2", Text: strings.Repeat("á", 150)},
		{Recipient: "525512345606", RecipientRaw: "5512345606", MemberID: "586666"},
		{Recipient: "525512345607", RecipientRaw: "5512345607", MemberID: "587777"},
		{Recipient: "525512345608", RecipientRaw: "5512345608", MemberID: "588888"},
		{Recipient: "525512345609", RecipientRaw: "5512345609", MemberID: "589999"},
	})
	b2 := reportBroadcast(tb, db, "Campaña Día de Muertos — ñandú", "PAYBACK", []campaignd.Row{
		{Recipient: "525587654301", RecipientRaw: "5587654301", MemberID: "card 1"},
		{Recipient: "525587654302", RecipientRaw: "0052 55 8765 4302", MemberID: "card,2"},
		{Recipient: "525587654303", RecipientRaw: "5587654303", MemberID: `card "3"`},
		{Recipient: "525587654304", RecipientRaw: "5587654304", MemberID: "5804"},
	})
	b3 := reportBroadcast(tb, db, "testDate", "28776", []campaignd.Row{
		{Recipient: "525800000001", RecipientRaw: "5800000001", MemberID: "581111"},
		{Recipient: "525800000002", RecipientRaw: "5800000002", MemberID: "582222"},
	})
	// Settled out of Tracking ID order, in several batches, as the engine
	// would: the report orders by Tracking ID.
	reportSettle(tb, db, b2,
		reportChange{idx: 3, state: campaignd.StateDelivered, submitted: reportAt(21, 23, 59, 58, 1), settled: reportAt(21, 23, 59, 59, 999)},
		reportChange{idx: 0, state: campaignd.StateExpired, submitted: reportAt(19, 8, 0, 0, 10), settled: reportAt(21, 8, 0, 0, 10)},
		reportChange{idx: 1, state: campaignd.StateDeleted, submitted: reportAt(21, 0, 0, 0, 0), settled: reportAt(21, 0, 0, 0, 0)},
		reportChange{idx: 2, state: campaignd.StateAccepted, submitted: reportAt(21, 12, 30, 45, 100), settled: reportAt(21, 12, 31, 0, 0)},
	)
	reportSettle(tb, db, b1,
		// receipts
		reportChange{idx: 0, state: campaignd.StateDelivered, submitted: reportAt(21, 10, 0, 0, 0), settled: reportAt(21, 10, 0, 3, 0)},
		reportChange{idx: 1, state: campaignd.StateUndeliverable, submitted: reportAt(21, 10, 0, 1, 120), settled: reportAt(21, 10, 0, 5, 0)},
		// final submit error: never accepted, time stamp = settled
		reportChange{idx: 2, state: campaignd.StateRejected, settled: reportAt(21, 10, 0, 2, 123)},
		// receipt timeout: submitted three days before
		reportChange{idx: 3, state: campaignd.StateUnknown, submitted: reportAt(18, 9, 0, 0, 500), settled: reportAt(21, 9, 0, 0, 500)},
		// multipart: the worst of its parts
		reportChange{idx: 4, state: campaignd.StateUndeliverable, submitted: reportAt(21, 11, 11, 11, 11), settled: reportAt(21, 11, 12, 0, 0),
			parts: []campaignd.MessageState{campaignd.StateDelivered, campaignd.StateUndeliverable, campaignd.StateDelivered}},
		// not in this day's report
		reportChange{idx: 5, state: campaignd.StateSubmitted, submitted: reportAt(21, 10, 0, 0, 0)},
		reportChange{idx: 6, state: campaignd.StateDelivered, submitted: reportAt(20, 23, 59, 59, 0), settled: reportAt(20, 23, 59, 59, 999)},
		reportChange{idx: 7, state: campaignd.StateDelivered, submitted: reportAt(21, 23, 59, 59, 0), settled: reportAt(22, 0, 0, 0, 0)},
		reportChange{idx: 8, state: campaignd.StateCancelled, settled: reportAt(21, 10, 0, 0, 0)},
	)
	reportSettle(tb, db, b3,
		reportChange{idx: 1, state: campaignd.StateDelivered, submitted: reportAt(21, 14, 21, 29, 0), settled: reportAt(21, 14, 21, 30, 0)},
		reportChange{idx: 0, state: campaignd.StateRejected, submitted: reportAt(21, 14, 21, 29, 0), settled: reportAt(21, 14, 21, 30, 0)},
	)
}

func newTestReporter(tb testing.TB, db report.Store, clock *reportClock, timers *reportTimers, pusher report.Pusher, events report.Events) (*report.Reporter, string) {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "reports")
	r, err := report.NewReporter(report.Options{
		Store: db, Timers: timers, Dir: dir, FileName: "report_{date}.csv", Location: reportLoc, Time: "01:00",
		Pusher: pusher, Now: clock.Now, Events: events,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return r, dir
}

func TestReportGolden(t *testing.T) {
	db := reportTestDB(t, "")
	reportGoldenDay(t, db)
	clock := &reportClock{t: reportAt(22, 1, 0, 0, 0)}
	r, dir := newTestReporter(t, db, clock, newReportTimers(clock), nil, nil)

	var buf bytes.Buffer
	rep, err := r.ReportCSV(context.Background(), "2026-11-21", &buf)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report", "golden_20261121.csv")
	if reportUpdateGolden() {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("report differs from %s:\n--- got\n%s\n--- want\n%s", golden, buf.Bytes(), want)
	}
	archived, err := os.ReadFile(filepath.Join(dir, "report_20261121.csv"))
	if err != nil || !bytes.Equal(archived, want) {
		t.Fatalf("archive differs (%v)", err)
	}
	sum := sha256.Sum256(want)
	if rep.Day != "2026-11-21" || rep.FileName != "report_20261121.csv" || rep.Rows != 11 || rep.Bytes != int64(len(want)) ||
		rep.SHA256 != hex.EncodeToString(sum[:]) || rep.Partial || rep.PushState != campaignd.PushNone {
		t.Fatalf("report = %+v", rep)
	}
	if bytes.HasPrefix(want, []byte("\xef\xbb\xbf")) || bytes.Contains(want, []byte("\r")) {
		t.Fatal("report has a BOM or CR")
	}

	// Producing the day again gives the same bytes.
	if err := os.Remove(filepath.Join(dir, "report_20261121.csv")); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if rep2, err := r.ReportCSV(context.Background(), "2026-11-21", &buf); err != nil || rep2.SHA256 != rep.SHA256 || !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("regenerated: %+v, %v", rep2, err)
	}
	var again bytes.Buffer
	if _, err := report.WriteReport(context.Background(), &again, db, "20261121", reportLoc); err != nil || !bytes.Equal(again.Bytes(), want) {
		t.Fatalf("WriteReport again differs (%v)", err)
	}
}

func TestReportEmptyDayIsHeaderOnly(t *testing.T) {
	db := reportTestDB(t, "")
	var buf bytes.Buffer
	n, err := report.WriteReport(context.Background(), &buf, db, "20261121", reportLoc)
	if err != nil || n != 0 || buf.String() != campaignd.ReportHeader+"\n" {
		t.Fatalf("empty day: %d rows, %q, %v", n, buf.String(), err)
	}
}

// reportSeedSource serves the two rows of the seed's sample.
type reportSeedSource struct{}

func (reportSeedSource) ReportMessages(day string, fn func(*campaignd.Message) error) error {
	ts := time.Date(2016, 2, 4, 14, 21, 29, 0, reportLoc)
	for i, m := range []campaignd.Row{{RecipientRaw: "5800000001", MemberID: "581111"}, {RecipientRaw: "5800000002", MemberID: "582222"}} {
		msg := &campaignd.Message{Row: m, BroadcastID: 7, TrackingID: 68822 + uint64(i), State: campaignd.StateDelivered,
			SubmittedAt: ts, SettledAt: ts.Add(time.Second)}
		if err := fn(msg); err != nil {
			return err
		}
	}
	return nil
}

func (reportSeedSource) Broadcast(id uint64) (*campaignd.Broadcast, error) {
	if id != 7 {
		return nil, errors.New("no such broadcast")
	}
	return &campaignd.Broadcast{ID: 7, Name: "testDate", Sender: "28776"}, nil
}

func TestReportMatchesSeedSample(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "report", "seed_sample.csv"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := report.WriteReport(context.Background(), &buf, reportSeedSource{}, "20160204", reportLoc); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("got\n%q\nwant\n%q", buf.Bytes(), want)
	}
}

func TestReportTimeStampMilliseconds(t *testing.T) {
	for _, tc := range []struct {
		name string
		ms   int
		want string
	}{
		{"zero", 0, "2026-11-21 10:00:00.0"},
		{"hundreds", 100, "2026-11-21 10:00:00.1"},
		{"tens", 120, "2026-11-21 10:00:00.12"},
		{"three digits", 123, "2026-11-21 10:00:00.123"},
		{"leading zero", 5, "2026-11-21 10:00:00.005"},
		{"one zero inside", 50, "2026-11-21 10:00:00.05"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := reportTestDB(t, "")
			b := reportBroadcast(t, db, "x", "1", []campaignd.Row{{Recipient: "525512345678", RecipientRaw: "5512345678"}})
			reportSettle(t, db, b, reportChange{idx: 0, state: campaignd.StateDelivered, submitted: reportAt(21, 10, 0, 0, tc.ms), settled: reportAt(21, 10, 0, 1, 0)})
			var buf bytes.Buffer
			if _, err := report.WriteReport(context.Background(), &buf, db, "20261121", reportLoc); err != nil {
				t.Fatal(err)
			}
			if got := strings.Split(buf.String(), "\n")[1]; !strings.Contains(got, ","+tc.want+",") {
				t.Fatalf("row %q does not contain %q", got, tc.want)
			}
		})
	}
}
