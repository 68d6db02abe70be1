package webui

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"campaignd"
)

// breakdownRow is one line of a settled broadcast's results by final
// status and SMPP error code.
type breakdownRow struct {
	State campaignd.MessageState
	Code  uint32
	N     int64
	Pct   int64
}

// breakdowns caches the breakdown of broadcasts that can no longer change
// (settled: nothing queued or awaiting a receipt), so a page view reads
// every message of a broadcast once, not at every view.
type breakdowns struct {
	mu sync.Mutex
	m  map[uint64]settled
}

// settled is what is computed once for a settled broadcast.
type settled struct {
	rows  []breakdownRow
	chart *chart
}

// chart is the broadcast over time: messages submitted and settled per
// step, drawn as two polylines in a chartW × chartH SVG.
type chart struct {
	Start, End         time.Time
	Step               time.Duration
	Max                int64
	Submitted, Settled string // SVG points
	StepMinutes        int
}

const (
	chartW, chartH = 600, 120
	chartBuckets   = 120 // at most this many steps; a minute each when the broadcast is short
)

// maxBreakdowns bounds the cache; past it the cache starts again.
const maxBreakdowns = 256

// breakdown returns the results of a settled broadcast by final status and
// SMPP error code, most frequent first; nil while it can still change.
func (s *Server) breakdown(ctx context.Context, b *campaignd.Broadcast) ([]breakdownRow, *chart, error) {
	if (b.Status != campaignd.StatusCompleted && b.Status != campaignd.StatusCancelled) ||
		b.Counts.Queued > 0 || b.Counts.Submitted > 0 {
		return nil, nil, nil
	}
	s.bd.mu.Lock()
	st, ok := s.bd.m[b.ID]
	s.bd.mu.Unlock()
	if ok {
		return st.rows, st.chart, nil
	}
	var rows []breakdownRow
	var subs, sets []time.Time
	type key struct {
		st   campaignd.MessageState
		code uint32
	}
	counts := map[key]int64{}
	err := s.o.Backend.Messages(ctx, b.ID, func(m *campaignd.Message) error {
		counts[key{m.State, m.ErrorCode}]++
		if !m.SubmittedAt.IsZero() {
			subs = append(subs, m.SubmittedAt)
		}
		if !m.SettledAt.IsZero() && m.State.Final() {
			sets = append(sets, m.SettledAt)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for k, n := range counts {
		rows = append(rows, breakdownRow{State: k.st, Code: k.code, N: n})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].N != rows[j].N {
			return rows[i].N > rows[j].N
		}
		if rows[i].State != rows[j].State {
			return rows[i].State < rows[j].State
		}
		return rows[i].Code < rows[j].Code
	})
	ns := make([]int64, len(rows))
	for i, r := range rows {
		ns[i] = r.N
	}
	for i, p := range shares(ns...) {
		rows[i].Pct = p
	}
	c := newChart(subs, sets)
	s.bd.mu.Lock()
	if s.bd.m == nil || len(s.bd.m) >= maxBreakdowns {
		s.bd.m = map[uint64]settled{}
	}
	s.bd.m[b.ID] = settled{rows, c}
	s.bd.mu.Unlock()
	return rows, c, nil
}

// newChart buckets submit and settle times by minute (or a wider whole
// number of minutes, so there are at most chartBuckets steps); nil when
// nothing was submitted.
func newChart(subs, sets []time.Time) *chart {
	if len(subs) == 0 {
		return nil
	}
	start, end := subs[0], subs[0]
	for _, ts := range [][]time.Time{subs, sets} {
		for _, t := range ts {
			if t.Before(start) {
				start = t
			}
			if t.After(end) {
				end = t
			}
		}
	}
	start = start.Truncate(time.Minute)
	minutes := int(end.Sub(start)/time.Minute) + 1
	stepMin := max(1, (minutes+chartBuckets-1)/chartBuckets)
	step := time.Duration(stepMin) * time.Minute
	n := (minutes + stepMin - 1) / stepMin
	count := func(ts []time.Time) []int64 {
		out := make([]int64, n)
		for _, t := range ts {
			i := min(n-1, int(t.Sub(start)/step))
			out[i]++
		}
		return out
	}
	a, b := count(subs), count(sets)
	c := &chart{Start: start, End: start.Add(time.Duration(n) * step), Step: step, StepMinutes: stepMin}
	for i := range a {
		c.Max = max(c.Max, a[i], b[i])
	}
	c.Submitted, c.Settled = points(a, c.Max), points(b, c.Max)
	return c
}

// points draws counts as a step line across the chart.
func points(v []int64, top int64) string {
	var sb strings.Builder
	w := float64(chartW) / float64(len(v))
	for i, n := range v {
		y := float64(chartH) - float64(n)*float64(chartH-4)/float64(max(top, 1))
		fmt.Fprintf(&sb, "%.1f,%.1f %.1f,%.1f ", float64(i)*w, y, float64(i+1)*w, y)
	}
	return strings.TrimSpace(sb.String())
}
