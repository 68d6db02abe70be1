package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// optoutMetrics are the opt-out collectors (SPEC §11).
type optoutMetrics struct {
	suppressed prometheus.Counter
	mos        *prometheus.CounterVec
	changes    *prometheus.CounterVec

	mu   sync.Mutex
	size func() int
}

func newOptoutMetrics(reg *prometheus.Registry) *optoutMetrics {
	o := &optoutMetrics{}
	o.suppressed = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "campaignd", Name: "messages_suppressed_total",
		Help: "Messages settled as suppressed, unsent, because the number opted out after its file was ingested."})
	o.mos = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "campaignd", Name: "mo_received_total",
		Help: "Mobile-originated replies received, by result: keyword (an opt-out keyword), other."}, []string{"result"})
	o.changes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "campaignd", Name: "suppression_changes_total",
		Help: "Numbers added to or removed from the suppression list, by change (added, removed) and reason (reply, operator, api, import)."},
		[]string{"change", "reason"})
	size := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "campaignd", Name: "suppression_list_size",
		Help: "Numbers on the suppression list."}, func() float64 {
		o.mu.Lock()
		f := o.size
		o.mu.Unlock()
		if f == nil {
			return 0
		}
		return float64(f())
	})
	reg.MustRegister(o.suppressed, o.mos, o.changes, size)
	for _, r := range []string{"keyword", "other"} {
		o.mos.WithLabelValues(r)
	}
	for _, c := range []string{"added", "removed"} {
		for _, r := range []string{"reply", "operator", "api", "import"} {
			o.changes.WithLabelValues(c, r)
		}
	}
	return o
}

// SuppressionListSize makes the list-size gauge read size at each scrape.
func (m *Metrics) SuppressionListSize(size func() int) {
	if m != nil {
		m.optout.mu.Lock()
		m.optout.size = size
		m.optout.mu.Unlock()
	}
}

// MessageSuppressed counts a message settled as suppressed.
func (m *Metrics) MessageSuppressed() {
	if m != nil {
		m.optout.suppressed.Inc()
	}
}

// MOReceived counts a reply: result "keyword" or "other".
func (m *Metrics) MOReceived(result string) {
	if m != nil {
		m.optout.mos.WithLabelValues(result).Inc()
	}
}

// SuppressionChanged counts numbers added to or removed from the list.
func (m *Metrics) SuppressionChanged(change, reason string, n int) {
	if m != nil && n > 0 {
		m.optout.changes.WithLabelValues(change, reason).Add(float64(n))
	}
}
