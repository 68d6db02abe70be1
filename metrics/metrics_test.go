package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"campaignd/metrics"
)

func TestEverySeriesIsExposed(t *testing.T) {
	m := metrics.New(func() map[string]int { return map[string]int{"sending": 2} })
	m.FTPConnectionOpened()
	m.SubmitDone("ok", time.Millisecond)
	m.IngestDone("accepted", time.Second)
	m.TimerFired("broadcast", 10*time.Millisecond)
	m.LastReportPush(time.Unix(1600000000, 0))
	m.ReportPushed("ok", time.Unix(1700000000, 0))
	m.MessageSettled("DELIVRD")
	m.Leader(true)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`campaignd_ftp_uploads_total{result="triggered"} 0`,
		`campaignd_ftp_logins_total{result="ok"} 0`,
		`campaignd_ftp_connections 1`,
		`campaignd_ingest_rows_total{result="valid"} 0`,
		`campaignd_ingest_duration_seconds_count{result="accepted"} 1`,
		`campaignd_broadcasts{status="sending"} 2`,
		`campaignd_broadcasts{status="pending"} 0`,
		`campaignd_smpp_submits_total{result="ok"} 1`,
		`campaignd_smpp_submit_latency_seconds_count 1`,
		`campaignd_smpp_bound 0`,
		`campaignd_smpp_window_in_use 0`,
		`campaignd_leader 1`,
		`campaignd_messages_settled_total{status="DELIVRD"} 1`,
		`campaignd_receipts_total{outcome="unmatched"} 0`,
		`campaignd_duplicates_after_crash_total 0`,
		`campaignd_timers_pending 0`,
		`campaignd_timer_lateness_seconds_count{kind="broadcast"} 1`,
		`campaignd_report_pushes_total{result="ok"} 1`,
		`campaignd_report_last_push_success_timestamp_seconds 1.7e+09`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestNilMetricsIsSafe(t *testing.T) {
	var m *metrics.Metrics
	m.FTPLogin("ok")
	m.SMPPBound(true)
	m.ReportPushed("error", time.Now())
}
