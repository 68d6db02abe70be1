package report_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"campaignd"
	"campaignd/ftpd"
	"campaignd/pipeline/report"
)

var _ report.Pusher = (*ftpd.Pusher)(nil)

// TestReportPushRetriedUntilServerUp pushes the daily report with the real
// Pusher to campaignd's own FTP server, which is down when the report is
// produced and comes up later: the retry pushes it, once.
func TestReportPushRetriedUntilServerUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there for now

	db := reportTestDB(t, "")
	b := reportBroadcast(t, db, "Buen Fin, 2026", "28776", []campaignd.Row{{Recipient: "525512345601", RecipientRaw: "5512345601", MemberID: "1"}})
	reportSettle(t, db, b, reportChange{idx: 0, state: campaignd.StateDelivered, submitted: reportAt(21, 9, 0, 0, 120), settled: reportAt(21, 9, 0, 1, 0)})
	pusher, err := ftpd.NewPusher(ftpd.PushOptions{URL: "ftp://payback:secret@" + addr + "/", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	clock := &reportClock{t: reportAt(21, 12, 0, 0, 0)}
	timers := newReportTimers(clock)
	events := &reportEventLog{}
	r, dir := newTestReporter(t, db, clock, timers, pusher, events)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	clock.Set(reportAt(22, 1, 0, 0, 0))
	timers.Fire(t)
	rep := mustReport(t, db, "20261121")
	if rep.PushState != campaignd.PushFailed || rep.Attempts != 1 || rep.LastError == "" {
		t.Fatalf("with the server down: %+v", rep)
	}

	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	srv, err := ftpd.New(ftpd.Options{Listen: addr, Root: root, Users: []ftpd.User{{Name: "payback", PasswordHash: string(hash)}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })

	clock.Add(time.Minute)
	timers.Fire(t)
	rep = mustReport(t, db, "20261121")
	if rep.PushState != campaignd.PushDone || rep.Attempts != 2 || rep.LastError != "" {
		t.Fatalf("after the server came up: %+v", rep)
	}
	want, err := os.ReadFile(filepath.Join(dir, "report_20261121.csv"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "payback", "report_20261121.csv"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("remote file = %q (%v), want %q", got, err, want)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "payback")); len(entries) != 1 {
		t.Fatalf("remote dir: %v", entries)
	}
	clock.Add(3 * time.Hour)
	timers.Fire(t)
	if !reflect.DeepEqual(events.results, []string{report.ReportPushError, report.ReportPushOK}) {
		t.Fatalf("pushes: %v, want one failure then one success", events.results)
	}
}
