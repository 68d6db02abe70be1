package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"campaignd/ftpd"
	"campaignd/internal/testenv"
)

// TestReportPushedEndToEnd: upload → send through the simulator → receipts
// → the day's report produced and pushed to a real FTP server (campaignd's
// own, as Payback's), and read back identical to the archive and the API.
func TestReportPushedEndToEnd(t *testing.T) {
	// Payback's FTP server.
	payback, srv := startPayback(t, "127.0.0.1:0")

	// The clock can jump a day ahead once the messages are settled.
	var offset atomic.Int64
	c := testConfig(t.TempDir())
	c.Simulator.DeliveredPercent = 50
	c.Report.FTPURL = fmt.Sprintf("ftp://payback:%s@%s/", testPass, srv.Addr())
	m := NewMain(io.Discard, &testLogWriter{tb: t})
	m.Config = c
	m.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	upload(t, m.FTP.Addr(), "report.csv", "Recipient,Message,Payback Member ID,Campaign Name,Date\n"+
		"5512345678,Hola uno,6001,\"Puntos, Noviembre\",2020-01-01\n"+
		"5587654321,Hola dos,,\"Puntos, Noviembre\",2020-01-01\n")
	b := broadcastOf(t, m, "report.csv")
	waitSettled(t, m, b.ID, 20*time.Second)
	day := time.Now().In(m.loc)
	// Jump to noon of the next local day: the day's report time has passed.
	next := time.Date(day.Year(), day.Month(), day.Day()+1, 12, 0, 0, 0, m.loc)
	offset.Store(int64(time.Until(next)))

	date := day.Format("2006-01-02")
	if code, body := apiPost(t, webBase(m), "POST", "/api/v1/reports/"+date+"/push", testAdmin, ""); code != 200 {
		t.Fatalf("push = %d %s", code, body)
	}
	name := "report_" + day.Format("20060102") + ".csv"
	pushed := filepath.Join(payback, "payback", name)
	testenv.Eventually(t, 10*time.Second, "the pushed report", func() bool { return fileExists(pushed) })
	got, _ := os.ReadFile(pushed)
	archived, err := os.ReadFile(filepath.Join(c.DataDir, "reports", name))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", webBase(m)+"/api/v1/reports/"+date+".csv", nil)
	req.SetBasicAuth(testAdmin, testPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, archived) || !bytes.Equal(got, served) {
		t.Fatalf("pushed, archived and served reports differ:\n%s\n---\n%s\n---\n%s", got, archived, served)
	}
	lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
	if len(lines) != 3 || lines[0] != "Sender,Recipient,Tracking ID,Campaign Name,Time Stamp,Delivery Status,Payback Member ID" {
		t.Fatalf("report:\n%s", got)
	}
	// The simulator delivers one of the two (50 %); which one is its choice.
	status := func(l string) string { f := strings.Split(l, ","); return f[len(f)-2] }
	if !strings.HasPrefix(lines[1], "28776,5512345678,") || !strings.Contains(lines[1], `,"Puntos, Noviembre",`) ||
		!strings.HasSuffix(lines[1], ",6001") || !strings.HasSuffix(lines[2], ",") ||
		status(lines[1])+status(lines[2]) != "UNDELIVDELIVRD" && status(lines[1])+status(lines[2]) != "DELIVRDUNDELIV" {
		t.Fatalf("report rows:\n%s", got)
	}
	if fileExists(pushed + ".part") {
		t.Fatal(".part left behind")
	}
}

// startPayback starts an FTP server standing for Payback's on addr, with
// the user "payback" (password testPass), stopped at the end of the test.
// It returns the directory it serves: the user's files are under
// "<dir>/payback".
func startPayback(t *testing.T, addr string) (string, *ftpd.Server) {
	t.Helper()
	dir := t.TempDir()
	srv, err := ftpd.New(ftpd.Options{Listen: addr, Root: dir, FailedLoginDelay: -1,
		Users: []ftpd.User{{Name: "payback", PasswordHash: testPasswordHash()}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	return dir, srv
}
