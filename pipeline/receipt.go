package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"campaignd"
	"campaignd/store"
)

// Receipt is a delivery receipt as the SMPP side hands it over.
type Receipt struct {
	MessageID string // normalised SMSC message id
	Stat      string // DELIVRD, UNDELIV, EXPIRED, DELETED, REJECTD, ACCEPTD, UNKNOWN; others are ignored
	DoneAt    time.Time
}

// Receipt outcomes reported to Events.ReceiptReceived.
const (
	ReceiptMatched   = store.ReceiptMatched
	ReceiptEarly     = store.ReceiptEarly
	ReceiptDuplicate = store.ReceiptDuplicate
	ReceiptUnmatched = "unmatched"
)

// errClosed is returned for writes after Close.
var errClosed = errors.New("pipeline: engine closed")

// HandleReceipt records a delivery receipt; it is durable when HandleReceipt
// returns nil, so the SMPP client acknowledges it only then (an error makes
// the SMSC redeliver it). The receipt's part takes its status; the message
// settles as the worst of its parts once every part has one. A receipt for
// an id not recorded yet (it overtook its submit_sm_resp) is held and
// applied when the id is recorded, or counted unmatched after EarlyHold. A
// repeated receipt, or one for a message already final, changes nothing.
// The settle time is the time of arrival.
func (e *Engine) HandleReceipt(r Receipt) error {
	st := campaignd.MessageState(strings.ToUpper(strings.TrimSpace(r.Stat)))
	if !st.Final() {
		e.log.Debug("non-final receipt ignored", slog.String("message_id", r.MessageID), slog.String("stat", r.Stat))
		return nil
	}
	if r.MessageID == "" {
		e.events.ReceiptReceived(ReceiptUnmatched)
		e.log.Warn("receipt without a message id dropped", slog.String("stat", r.Stat))
		return nil
	}
	res, err := e.writeWait(&writeReq{receipts: []store.ReceiptIn{{ID: r.MessageID, Stat: st, At: e.now()}}})
	if err != nil {
		return err
	}
	e.events.ReceiptReceived(res.Receipts[0])
	if res.Receipts[0] == ReceiptDuplicate {
		e.log.Debug("duplicate receipt", slog.String("message_id", r.MessageID), slog.String("stat", r.Stat))
	}
	return nil
}

// writeReq is a group of changes and receipts for the writer. after runs on
// the writer goroutine once they are committed (or failed); its result has
// this request's Applied and Receipts only.
type writeReq struct {
	changes  []store.Change
	receipts []store.ReceiptIn
	after    func(*store.ChangeResult, error)
}

// write hands r to the writer without waiting.
func (e *Engine) write(r *writeReq) {
	select {
	case e.writes <- r:
	case <-e.writerCtx.Done():
		if r.after != nil {
			r.after(nil, errClosed)
		}
	}
}

// writeWait hands r to the writer and waits until it is durable.
func (e *Engine) writeWait(r *writeReq) (*store.ChangeResult, error) {
	type result struct {
		res *store.ChangeResult
		err error
	}
	ch := make(chan result, 1)
	r.after = func(res *store.ChangeResult, err error) { ch <- result{res, err} }
	e.mu.Lock()
	started := e.started && e.writerCtx != nil
	e.mu.Unlock()
	if !started {
		return nil, errors.New("pipeline: engine not started")
	}
	e.write(r)
	select {
	case x := <-ch:
		return x.res, x.err
	case <-e.writerDone:
		select {
		case x := <-ch:
			return x.res, x.err
		default:
			return nil, errClosed
		}
	}
}

// writer is the single goroutine that writes message states: it takes
// whatever requests are waiting, up to BatchSize changes, and commits them in
// one transaction, so the batch grows with the load and a lone receipt is
// written at once.
func (e *Engine) writer() {
	defer close(e.writerDone)
	var batch []*writeReq
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	dirty := false
	for {
		batch = batch[:0]
		select {
		case <-tick.C:
			if dirty {
				if err := e.db.Sync(); err != nil {
					e.log.Error("sync store", slog.Any(logError, err))
				}
				dirty = false
			}
			continue
		case r := <-e.writes:
			batch = append(batch, r)
		case <-e.writerCtx.Done():
			for { // drain what was handed over before the stop
				select {
				case r := <-e.writes:
					e.flush([]*writeReq{r})
				default:
					if err := e.db.Sync(); err != nil {
						e.log.Error("sync store", slog.Any(logError, err))
					}
					return
				}
			}
		}
		n := len(batch[0].changes) + len(batch[0].receipts)
	more:
		for n < e.batchSize {
			select {
			case r := <-e.writes:
				batch = append(batch, r)
				n += len(r.changes) + len(r.receipts)
			default:
				break more
			}
		}
		e.flush(batch)
		dirty = true
	}
}

func (e *Engine) flush(batch []*writeReq) {
	var cs []store.Change
	var rs []store.ReceiptIn
	for _, r := range batch {
		cs = append(cs, r.changes...)
		rs = append(rs, r.receipts...)
	}
	opts := store.SaveOptions{DayOf: e.dayOf, MatchTTL: e.receiptTimeout + e.earlyHold + 24*time.Hour}
	var res *store.ChangeResult
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if res, err = e.db.SaveChanges(cs, rs, opts); err == nil {
			break
		}
		e.log.Error("write message states", slog.Int(logCount, len(cs)+len(rs)), slog.Any(logError, err))
		time.Sleep(time.Duration(10<<attempt) * time.Millisecond)
	}
	if err == nil {
		for _, s := range res.Settled {
			e.events.MessageSettled(string(s.State))
		}
	}
	ci, ri := 0, 0
	for _, r := range batch {
		if r.after == nil {
			continue
		}
		if err != nil {
			r.after(nil, err)
			continue
		}
		sub := &store.ChangeResult{Applied: res.Applied[ci : ci+len(r.changes)], Receipts: res.Receipts[ri : ri+len(r.receipts)]}
		ci, ri = ci+len(r.changes), ri+len(r.receipts)
		r.after(sub, nil)
	}
}

// onEarlyTimer drops receipts held longer than EarlyHold (they never
// matched a submitted message) and runs again later.
func (e *Engine) onEarlyTimer(ctx context.Context, id string, due time.Time) error {
	now := e.now()
	dropped, oldest, err := e.db.ExpireEarlyReceipts(now.Add(-e.earlyHold + time.Millisecond))
	if err != nil {
		return err
	}
	if dropped > 0 {
		for range dropped {
			e.events.ReceiptReceived(ReceiptUnmatched)
		}
		e.log.Warn("unmatched receipts dropped", slog.Int(logCount, dropped), slog.Duration("held", e.earlyHold))
	}
	next := now.Add(e.earlyHold)
	if !oldest.IsZero() {
		next = later(oldest.Add(e.earlyHold), now.Add(time.Second))
	}
	return e.wheel.Schedule(TimerEarly, id, next)
}

// onReceiptTimer settles UNKNOWN the messages of a broadcast still without
// a receipt ReceiptTimeout after their submit. There is one such timer per
// broadcast, not per message: each run scans the broadcast's submitted
// states and moves the timer to the next message's deadline, but at least
// ReceiptTimeout/100 later, so a million messages in flight cost one timer
// and about a hundred scans.
func (e *Engine) onReceiptTimer(ctx context.Context, id string, due time.Time) error {
	bid, err := parseUint(id)
	if err != nil {
		return nil
	}
	now := e.now()
	batch := e.newBatch()
	oldest, err := e.db.SubmittedBefore(bid, now.Add(-e.receiptTimeout+time.Millisecond), func(idx uint32) error {
		return batch.add(store.Change{BroadcastID: bid, Index: idx, From: campaignd.StateSubmitted,
			To: campaignd.StateUnknown, At: now})
	})
	if err != nil {
		return err
	}
	if err := batch.flush(); err != nil {
		return err
	}
	b, err := e.db.Broadcast(bid)
	if campaignd.ErrorCode(err) == campaignd.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	var next time.Time
	switch {
	case !oldest.IsZero():
		next = oldest.Add(e.receiptTimeout)
	case b.Status == campaignd.StatusSending || b.Status == campaignd.StatusPaused:
		next = now.Add(e.receiptTimeout) // messages submitted from now on
	default:
		return nil // nothing awaits a receipt any more
	}
	return e.wheel.Schedule(TimerReceipt, id, later(next, now.Add(e.sweepEvery)))
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
