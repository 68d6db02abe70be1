package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"campaignd/internal/testenv"
)

// TestKilledDuringReportPush: the process is killed (SIGKILL) while it is
// pushing a day's report to a server that stalls; after a restart, with the
// server answering again, the report is pushed, once, complete.
//
// The day is made to end by the time zone: messages settle on day D in
// UTC-12; the process restarts in UTC+14, where D's report time has passed.
func TestKilledDuringReportPush(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	addr, accepted, stall := stalledServer(t)

	dir := t.TempDir()
	c := testConfig(dir)
	c.Timezone = "Etc/GMT+12" // UTC-12
	c.Report.Time = "00:00"
	c.Report.FTPURL = fmt.Sprintf("ftp://payback:%s@%s/", testPass, addr)
	p := startProc(t, writeConfig(t, c))
	notNearMidnight(t, utcMinus12)
	upload(t, p.ftp, "day.csv", csvFile("2020-01-01", 3))
	base := "http://" + p.web
	var l apiList
	testenv.Eventually(t, 20*time.Second, "every message settled", func() bool {
		apiGet(t, base, "/api/v1/broadcasts", &l)
		return l.Total == 1 && l.Broadcasts[0].Counts.Delivered == 3
	})
	day := time.Now().In(utcMinus12)
	p.kill()

	// Restart where day D is over: the missed day is produced and pushed,
	// into the stalled server. Kill it mid-push.
	c.Timezone = "Etc/GMT-14" // UTC+14
	cfg := writeConfig(t, c)
	p = startProc(t, cfg)
	select {
	case <-accepted:
	case <-time.After(20 * time.Second):
		t.Fatal("no push attempt after the restart")
	}
	p.kill()
	stall()

	// The server is back, on the same address.
	payback, _ := startPayback(t, addr)
	p = startProc(t, cfg)
	name := "report_" + day.Format("20060102") + ".csv"
	pushed := filepath.Join(payback, "payback", name)
	testenv.Eventually(t, 90*time.Second, "the report pushed after the restart", func() bool { return fileExists(pushed) })
	b, _ := os.ReadFile(pushed)
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 4 || strings.Count(string(b), ",DELIVRD,") != 3 {
		t.Fatalf("pushed report:\n%s", b)
	}
	entries, _ := os.ReadDir(filepath.Join(payback, "payback"))
	if len(entries) != 1 {
		t.Fatalf("files on the server: %v, want only %s", entries, name)
	}

	// After another restart the time of the last good push is known at
	// once (the alert on stale pushes must not fire because of a restart).
	testenv.Eventually(t, 10*time.Second, "push state recorded", func() bool {
		var r struct {
			Reports []struct {
				PushState string `json:"push_state"`
			} `json:"reports"`
		}
		apiGet(t, "http://"+p.web, "/api/v1/reports", &r)
		return len(r.Reports) > 0 && r.Reports[0].PushState == "pushed"
	})
	p.kill()
	p = startProc(t, cfg)
	resp, err := http.Get("http://" + p.metr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), "campaignd_report_last_push_success_timestamp_seconds 0\n") ||
		!strings.Contains(string(body), "campaignd_report_last_push_success_timestamp_seconds 1.") {
		t.Fatal("last push time not restored after a restart")
	}
}

// stalledServer is a Payback server that stalls: it accepts connections and
// never says a word. stop stops it listening (its address is then free for
// a real server); the connections it took are closed at the end of the test.
func stalledServer(t *testing.T) (addr string, accepted <-chan net.Conn, stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 16)
	var mu sync.Mutex
	var taken []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			taken = append(taken, c)
			mu.Unlock()
			select {
			case conns <- c:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range taken {
			c.Close()
		}
	})
	return l.Addr().String(), conns, func() { l.Close() }
}

var utcMinus12 = time.FixedZone("UTC-12", -12*3600)

// notNearMidnight waits until local midnight in loc is more than two minutes
// away, so that what a test settles and the day it names after are the same
// day.
func notNearMidnight(t *testing.T, loc *time.Location) {
	t.Helper()
	now := time.Now().In(loc)
	midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, loc)
	if d := midnight.Sub(now); d < 2*time.Minute {
		t.Logf("waiting %s for midnight in %s to pass", d.Round(time.Second), loc)
		time.Sleep(d + time.Second)
	}
}
