// Package metrics holds every Prometheus collector of campaignd, exposed as
// methods named after the events that move them (SFTPGo's pattern). Nothing
// else in the module imports Prometheus: the other packages declare small
// event interfaces that *Metrics satisfies, and cmd/campaignd wires it in.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is a private registry with campaignd's collectors. A nil *Metrics
// is valid and records nothing, so tests may leave it out.
type Metrics struct {
	reg *prometheus.Registry

	uploads          *prometheus.CounterVec
	logins           *prometheus.CounterVec
	connections      prometheus.Gauge
	rows             *prometheus.CounterVec
	ingestDuration   *prometheus.HistogramVec
	submits          *prometheus.CounterVec
	submitLatency    prometheus.Histogram
	bound            prometheus.Gauge
	windowInUse      prometheus.Gauge
	settled          *prometheus.CounterVec
	receipts         *prometheus.CounterVec
	duplicates       prometheus.Counter
	timersPending    prometheus.Gauge
	timerLateness    *prometheus.HistogramVec
	reportPushes     *prometheus.CounterVec
	lastPushSuccess  prometheus.Gauge
	broadcastsByStat func() map[string]int
	webLogins        *prometheus.CounterVec

	receiptIDCollisions prometheus.Counter
	ingestRetries       prometheus.Counter
	optout              *optoutMetrics // optout.go
	leader              prometheus.Gauge
}

// New returns a Metrics with Go and process collectors registered.
// broadcasts, if not nil, is called at each scrape for the number of
// broadcasts by status.
func New(broadcasts func() map[string]int) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), broadcastsByStat: broadcasts}
	ns := "campaignd"
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, labels)
		m.reg.MustRegister(c)
		return c
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: name, Help: help})
		m.reg.MustRegister(g)
		return g
	}
	m.uploads = counterVec("ftp_uploads_total", "FTP uploads by result: stored, triggered, aborted, too_large, failed.", "result")
	m.logins = counterVec("ftp_logins_total", "FTP logins by result: ok, bad_credentials, banned, tls_required.", "result")
	m.webLogins = counterVec("web_logins_total", "Console and API logins by result: ok, bad_credentials, throttled.", "result")
	m.connections = gauge("ftp_connections", "FTP control connections open now.")
	m.rows = counterVec("ingest_rows_total", "Ingested rows by result: valid, invalid, duplicate.", "result")
	m.ingestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "ingest_duration_seconds",
		Help: "Time from upload complete to broadcast stored, by result: accepted, rejected.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"result"})
	m.reg.MustRegister(m.ingestDuration)
	m.submits = counterVec("smpp_submits_total", "submit_sm by result: ok, throttled, temporary, rejected, timeout, not_bound.", "result")
	m.submitLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "smpp_submit_latency_seconds",
		Help: "Time from submit_sm to submit_sm_resp.", Buckets: prometheus.ExponentialBuckets(0.0005, 3, 10)})
	m.reg.MustRegister(m.submitLatency)
	m.bound = gauge("smpp_bound", "1 while the SMPP session is bound, else 0.")
	m.windowInUse = gauge("smpp_window_in_use", "submit_sm awaiting a response.")
	m.leader = gauge("leader", "1 while this node leads (holds the SMPP binds and runs the engine; always 1 with the Badger store), else 0.")
	m.settled = counterVec("messages_settled_total", "Messages that reached a final status, by status.", "status")
	m.receipts = counterVec("receipts_total", "Delivery receipts by outcome: matched, early, duplicate, held, unmatched.", "outcome")
	m.duplicates = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "duplicates_after_crash_total",
		Help: "Messages that may have been sent twice because they were in flight at a crash."})
	m.reg.MustRegister(m.duplicates)
	m.timersPending = gauge("timers_pending", "Timers waiting in the durable timing wheel.")
	m.timerLateness = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "timer_lateness_seconds",
		Help: "How late timers fired, by kind.", Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 30, 300, 3600}}, []string{"kind"})
	m.reg.MustRegister(m.timerLateness)
	m.reportPushes = counterVec("report_pushes_total", "Daily report pushes by result: ok, error.", "result")
	m.lastPushSuccess = gauge("report_last_push_success_timestamp_seconds", "Unix time of the last successful report push.")
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(broadcastCollector{m})
	m.receiptIDCollisions = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "receipt_id_collisions_total",
		Help: "SMSC message ids given to a message while another one awaiting a receipt had them (their receipts are not matched)."})
	m.reg.MustRegister(m.receiptIDCollisions)
	m.optout = newOptoutMetrics(m.reg)

	// Pre-create the common label values so every documented series exists
	// from the first scrape.
	for _, r := range []string{"stored", "triggered", "aborted", "too_large", "failed"} {
		m.uploads.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "bad_credentials", "banned"} {
		m.logins.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "bad_credentials", "throttled"} {
		m.webLogins.WithLabelValues(r)
	}
	for _, r := range []string{"valid", "invalid", "duplicate"} {
		m.rows.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "throttled", "temporary", "rejected", "timeout", "not_bound"} {
		m.submits.WithLabelValues(r)
	}
	for _, r := range []string{"matched", "early", "duplicate", "held", "unmatched"} {
		m.receipts.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "error"} {
		m.reportPushes.WithLabelValues(r)
	}
	for _, st := range []string{"DELIVRD", "UNDELIV", "EXPIRED", "DELETED", "REJECTD", "ACCEPTD", "UNKNOWN", "cancelled"} {
		m.settled.WithLabelValues(st)
	}
	for _, r := range []string{"accepted", "rejected"} {
		m.ingestDuration.WithLabelValues(r)
	}
	// An ingest job that could not finish ends as result "failed"
	// (ingest_duration_seconds_count counts uploads by result); its
	// transient failures, retried with backoff, are counted apart.
	m.ingestDuration.WithLabelValues("failed")
	m.ingestRetries = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "ingest_retries_total",
		Help: "Ingest jobs that failed for a reason that may pass (disk, store) and will be tried again."})
	m.reg.MustRegister(m.ingestRetries)
	// The timer kinds of the engine and the daily report.
	for _, k := range []string{"broadcast", "retry", "window", "receipt", "early", "report", "report-push"} {
		m.timerLateness.WithLabelValues(k)
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

var broadcastDesc = prometheus.NewDesc("campaignd_broadcasts", "Broadcasts by status.", []string{"status"}, nil)

type broadcastCollector struct{ m *Metrics }

func (c broadcastCollector) Describe(ch chan<- *prometheus.Desc) { ch <- broadcastDesc }

func (c broadcastCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{}
	if c.m.broadcastsByStat != nil {
		counts = c.m.broadcastsByStat()
	}
	for _, s := range []string{"pending", "scheduled", "sending", "paused", "completed", "cancelled"} {
		ch <- prometheus.MustNewConstMetric(broadcastDesc, prometheus.GaugeValue, float64(counts[s]), s)
	}
}

// FTPLogin counts a login attempt.
func (m *Metrics) FTPLogin(result string) {
	if m != nil {
		m.logins.WithLabelValues(result).Inc()
	}
}

// FTPConnectionOpened counts an open control connection.
func (m *Metrics) FTPConnectionOpened() {
	if m != nil {
		m.connections.Inc()
	}
}

// FTPConnectionClosed uncounts a control connection.
func (m *Metrics) FTPConnectionClosed() {
	if m != nil {
		m.connections.Dec()
	}
}

// UploadFinished counts an upload by result.
func (m *Metrics) UploadFinished(result string) {
	if m != nil {
		m.uploads.WithLabelValues(result).Inc()
	}
}

// RowsIngested counts n rows of one result.
func (m *Metrics) RowsIngested(result string, n int) {
	if m != nil {
		m.rows.WithLabelValues(result).Add(float64(n))
	}
}

// IngestDone records how long an ingest took.
func (m *Metrics) IngestDone(result string, d time.Duration) {
	if m != nil {
		m.ingestDuration.WithLabelValues(result).Observe(d.Seconds())
	}
}

// IngestRetry counts an ingest job that failed and will be tried again.
func (m *Metrics) IngestRetry() {
	if m != nil {
		m.ingestRetries.Inc()
	}
}

// SubmitDone counts a submit_sm and its latency.
func (m *Metrics) SubmitDone(result string, d time.Duration) {
	if m != nil {
		m.submits.WithLabelValues(result).Inc()
		if result == "ok" {
			m.submitLatency.Observe(d.Seconds())
		}
	}
}

// Leader records whether this node leads (SPEC §12).
func (m *Metrics) Leader(leads bool) {
	if m != nil {
		v := 0.0
		if leads {
			v = 1
		}
		m.leader.Set(v)
	}
}

// SMPPBound records the bind state.
func (m *Metrics) SMPPBound(bound bool) {
	if m != nil {
		v := 0.0
		if bound {
			v = 1
		}
		m.bound.Set(v)
	}
}

// WindowInUse records the submits awaiting a response.
func (m *Metrics) WindowInUse(n int) {
	if m != nil {
		m.windowInUse.Set(float64(n))
	}
}

// MessageSettled counts a message that reached a final status.
func (m *Metrics) MessageSettled(status string) {
	if m != nil {
		m.settled.WithLabelValues(status).Inc()
	}
}

// ReceiptReceived counts a delivery receipt by outcome.
func (m *Metrics) ReceiptReceived(outcome string) {
	if m != nil {
		m.receipts.WithLabelValues(outcome).Inc()
	}
}

// ReceiptIDCollision counts an SMSC message id given to two messages
// awaiting receipts.
func (m *Metrics) ReceiptIDCollision() {
	if m != nil {
		m.receiptIDCollisions.Inc()
	}
}

// DuplicatesAfterCrash counts messages possibly sent twice after a crash.
func (m *Metrics) DuplicatesAfterCrash(n int) {
	if m != nil {
		m.duplicates.Add(float64(n))
	}
}

// TimersPending records the number of pending timers.
func (m *Metrics) TimersPending(n int) {
	if m != nil {
		m.timersPending.Set(float64(n))
	}
}

// TimerFired records how late a timer fired.
func (m *Metrics) TimerFired(kind string, lateness time.Duration) {
	if m != nil {
		m.timerLateness.WithLabelValues(kind).Observe(lateness.Seconds())
	}
}

// LastReportPush sets the time of the last good push without counting a
// push: at start-up, from the stored push states, so the gauge does not read
// 0 after a restart.
func (m *Metrics) LastReportPush(at time.Time) {
	if m != nil && !at.IsZero() {
		m.lastPushSuccess.Set(float64(at.Unix()))
	}
}

// ReportPushed counts a report push; a success also sets the time of the
// last good push.
func (m *Metrics) ReportPushed(result string, at time.Time) {
	if m != nil {
		m.reportPushes.WithLabelValues(result).Inc()
		if result == "ok" {
			m.lastPushSuccess.Set(float64(at.Unix()))
		}
	}
}

// WebLogin counts a console or API login attempt that was checked or
// refused (ok, bad_credentials, throttled); API calls with credentials
// cached from a recent check are not counted.
func (m *Metrics) WebLogin(result string) {
	if m != nil {
		m.webLogins.WithLabelValues(result).Inc()
	}
}
