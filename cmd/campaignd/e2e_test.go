package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
)

type apiBroadcast struct {
	ID          uint64           `json:"id"`
	Name        string           `json:"name"`
	FileName    string           `json:"file_name"`
	Status      campaignd.Status `json:"status"`
	ScheduledAt *time.Time       `json:"scheduled_at"`
	Counts      campaignd.Counts `json:"counts"`
}

type apiList struct {
	Total      int            `json:"total"`
	Broadcasts []apiBroadcast `json:"broadcasts"`
}

func webBase(m *Main) string { return "http://" + m.WebAddr() }

// broadcastOf waits for the broadcast made from file name and returns it.
func broadcastOf(t *testing.T, m *Main, name string) apiBroadcast {
	t.Helper()
	var found apiBroadcast
	testenv.Eventually(t, 10*time.Second, "broadcast of "+name, func() bool {
		var l apiList
		apiGet(t, webBase(m), "/api/v1/broadcasts", &l)
		for _, b := range l.Broadcasts {
			if b.FileName == name {
				found = b
				return true
			}
		}
		return false
	})
	return found
}

func getBroadcast(t *testing.T, m *Main, id uint64) apiBroadcast {
	t.Helper()
	var b apiBroadcast
	if code := apiGet(t, webBase(m), fmt.Sprintf("/api/v1/broadcasts/%d", id), &b); code != 200 {
		t.Fatalf("GET broadcast %d: %d", id, code)
	}
	return b
}

func waitSettled(t *testing.T, m *Main, id uint64, d time.Duration) apiBroadcast {
	t.Helper()
	var b apiBroadcast
	testenv.Eventually(t, d, "every message settled", func() bool {
		b = getBroadcast(t, m, id)
		c := b.Counts
		return b.Status == campaignd.StatusCompleted && c.Delivered+c.Failed+c.Unknown == c.Total
	})
	return b
}

func TestEndToEndPastDateIsDelivered(t *testing.T) {
	c := testConfig(t.TempDir())
	c.Simulator.DeliveredPercent = 50
	m := MustRunMain(t, c)
	upload(t, m.FTP.Addr(), "past.csv", csvFile("2020-01-01 10:00", 40))
	b := broadcastOf(t, m, "past.csv")
	b = waitSettled(t, m, b.ID, 20*time.Second)
	if b.Counts.Delivered != 20 || b.Counts.Failed != 20 || b.Counts.Queued != 0 || b.Counts.Submitted != 0 {
		t.Fatalf("counts = %+v, want 20 delivered and 20 failed (simulator at 50%%)", b.Counts)
	}
	// The export lists every message with its final status.
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/broadcasts/%d/messages.csv", webBase(m), b.ID), nil)
	req.SetBasicAuth(testAdmin, testPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if len(lines) != 41 || strings.Count(string(body), "DELIVRD") != 20 || strings.Count(string(body), "UNDELIV") != 20 {
		t.Fatalf("messages.csv has %d lines:\n%s", len(lines), body)
	}
}

func TestEndToEndPendingSendAndActions(t *testing.T) {
	m := MustRunMain(t, testConfig(t.TempDir()))
	base := webBase(m)
	upload(t, m.FTP.Addr(), "pending.csv", csvFile("", 5))
	b := broadcastOf(t, m, "pending.csv")
	if b.Status != campaignd.StatusPending {
		t.Fatalf("status = %s, want pending", b.Status)
	}
	path := fmt.Sprintf("/api/v1/broadcasts/%d", b.ID)
	if code, body := apiPost(t, base, "POST", path+"/pause", testAdmin, ""); code != 409 || !strings.Contains(body, "error") {
		t.Fatalf("pause pending = %d %s, want 409", code, body)
	}
	if code, _ := apiPost(t, base, "POST", path+"/send", "viewer", ""); code != 403 {
		t.Fatalf("viewer send = %d, want 403", code)
	}
	if code, _ := apiPost(t, base, "POST", path+"/schedule", testAdmin, `{"at":"2020-01-01T00:00:00Z"}`); code != 400 {
		t.Fatalf("schedule in the past = %d, want 400", code)
	}
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if code, body := apiPost(t, base, "POST", path+"/schedule", testAdmin, `{"at":"`+at.Format(time.RFC3339)+`"}`); code != 200 {
		t.Fatalf("schedule = %d %s", code, body)
	}
	if got := getBroadcast(t, m, b.ID); got.Status != campaignd.StatusScheduled || got.ScheduledAt == nil || !got.ScheduledAt.Equal(at) {
		t.Fatalf("after schedule: %+v", got)
	}
	if code, body := apiPost(t, base, "POST", path+"/send", testAdmin, ""); code != 200 {
		t.Fatalf("send = %d %s", code, body)
	}
	waitSettled(t, m, b.ID, 20*time.Second)
	if code, _ := apiPost(t, base, "DELETE", path, testAdmin, ""); code != 409 {
		t.Fatalf("delete completed = %d, want 409", code)
	}
	log, err := m.DB.AuditLog(b.ID)
	if err != nil || len(log) < 2 || log[0].User != testAdmin || log[0].RemoteAddr == "" {
		t.Fatalf("audit log = %+v, %v", log, err)
	}
}

func TestEndToEndScheduledFiresOnTime(t *testing.T) {
	m := MustRunMain(t, testConfig(t.TempDir()))
	due := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	upload(t, m.FTP.Addr(), "soon.csv", csvFile(due.In(m.loc).Format("2006-01-02 15:04:05"), 3))
	b := broadcastOf(t, m, "soon.csv")
	if b.Status != campaignd.StatusScheduled {
		t.Fatalf("status = %s, want scheduled", b.Status)
	}
	testenv.Eventually(t, 10*time.Second, "sending", func() bool { return getBroadcast(t, m, b.ID).Status != campaignd.StatusScheduled })
	// How late is measured by the benchmarks (BENCHMARKS.md), not asserted
	// here; starting early would be a bug.
	if late := time.Since(due); late < -100*time.Millisecond {
		t.Errorf("started %s before due", -late)
	} else {
		t.Logf("started at most %s after due (including the 20 ms polling)", late)
	}
	waitSettled(t, m, b.ID, 20*time.Second)
}

func TestEndToEndPauseResumeCancel(t *testing.T) {
	c := testConfig(t.TempDir())
	c.SMPP.TPS = 50
	m := MustRunMain(t, c)
	base := webBase(m)
	upload(t, m.FTP.Addr(), "big.csv", csvFile("2020-01-01", 400))
	b := broadcastOf(t, m, "big.csv")
	path := fmt.Sprintf("/api/v1/broadcasts/%d", b.ID)
	testenv.Eventually(t, 10*time.Second, "some submitted", func() bool { return getBroadcast(t, m, b.ID).Counts.Queued < 390 })
	if code, body := apiPost(t, base, "POST", path+"/pause", testAdmin, ""); code != 200 {
		t.Fatalf("pause = %d %s", code, body)
	}
	time.Sleep(1200 * time.Millisecond) // the bar: no submit after 1 s
	before := m.Sim.Stats().Submits
	time.Sleep(time.Second)
	if after := m.Sim.Stats().Submits; after != before {
		t.Fatalf("submits went on while paused: %d -> %d", before, after)
	}
	if code, _ := apiPost(t, base, "POST", path+"/resume", testAdmin, ""); code != 200 {
		t.Fatalf("resume = %d", code)
	}
	testenv.Eventually(t, 10*time.Second, "progress after resume", func() bool { return m.Sim.Stats().Submits > before+20 })
	apiPost(t, base, "POST", path+"/pause", testAdmin, "")
	if code, body := apiPost(t, base, "POST", path+"/cancel", testAdmin, ""); code != 200 {
		t.Fatalf("cancel = %d %s", code, body)
	}
	var got apiBroadcast
	testenv.Eventually(t, 10*time.Second, "cancelled counts", func() bool {
		got = getBroadcast(t, m, b.ID)
		return got.Status == campaignd.StatusCancelled && got.Counts.Queued == 0 && got.Counts.Cancelled > 0
	})
	submitted := m.Sim.Stats().Submits
	if int64(got.Counts.Cancelled)+submitted != 400 {
		t.Fatalf("cancelled %d + submitted %d != 400 (a message lost or sent twice)", got.Counts.Cancelled, submitted)
	}
}

func TestHealthReadyAndMetrics(t *testing.T) {
	m := MustRunMain(t, testConfig(t.TempDir()))
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
		resp, err := http.Get(webBase(m) + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s = %d %s", path, resp.StatusCode, body)
		}
		if path == "/readyz" {
			var r struct {
				Detail map[string]string `json:"detail"`
			}
			json.Unmarshal(body, &r)
			if r.Detail["smsc"] == "" || r.Detail["store"] != "ok" {
				t.Fatalf("readyz detail = %s", body)
			}
		}
	}
	upload(t, m.FTP.Addr(), "x.csv", csvFile("", 2))
	broadcastOf(t, m, "x.csv")
	// Events are counted just after the state they describe is visible:
	// scrape until the ingest's are in.
	var body []byte
	testenv.Eventually(t, 10*time.Second, "ingest counted in /metrics", func() bool {
		resp, err := http.Get("http://" + m.MetricsAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(body), `campaignd_ingest_rows_total{result="valid"} 2`)
	})
	for _, want := range []string{
		`campaignd_ftp_uploads_total{result="triggered"} 1`,
		`campaignd_ftp_logins_total{result="ok"} 1`,
		`campaignd_ingest_rows_total{result="valid"} 2`,
		`campaignd_broadcasts{status="pending"} 1`,
		`campaignd_smpp_bound 1`,
		`campaignd_timers_pending`,
		`campaignd_report_pushes_total`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
