package webui

import (
	"context"
	"sort"
	"sync"

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
	m  map[uint64][]breakdownRow
}

// maxBreakdowns bounds the cache; past it the cache starts again.
const maxBreakdowns = 256

// breakdown returns the results of a settled broadcast by final status and
// SMPP error code, most frequent first; nil while it can still change.
func (s *Server) breakdown(ctx context.Context, b *campaignd.Broadcast) ([]breakdownRow, error) {
	if (b.Status != campaignd.StatusCompleted && b.Status != campaignd.StatusCancelled) ||
		b.Counts.Queued > 0 || b.Counts.Submitted > 0 {
		return nil, nil
	}
	s.bd.mu.Lock()
	rows, ok := s.bd.m[b.ID]
	s.bd.mu.Unlock()
	if ok {
		return rows, nil
	}
	type key struct {
		st   campaignd.MessageState
		code uint32
	}
	counts := map[key]int64{}
	err := s.o.Backend.Messages(ctx, b.ID, func(m *campaignd.Message) error {
		counts[key{m.State, m.ErrorCode}]++
		return nil
	})
	if err != nil {
		return nil, err
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
	s.bd.mu.Lock()
	if s.bd.m == nil || len(s.bd.m) >= maxBreakdowns {
		s.bd.m = map[uint64][]breakdownRow{}
	}
	s.bd.m[b.ID] = rows
	s.bd.mu.Unlock()
	return rows, nil
}
