package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"campaignd"
)

// Receipt outcomes reported to Events.ReceiptReceived.
const (
	ReceiptMatched   = campaignd.ReceiptMatched
	ReceiptEarly     = campaignd.ReceiptEarly
	ReceiptDuplicate = campaignd.ReceiptDuplicate
	ReceiptHeld      = campaignd.ReceiptHeld // auto cannot tell it apart yet
	ReceiptUnmatched = campaignd.ReceiptUnmatched
)

// errClosed is returned for writes after Close.
var errClosed = errors.New("pipeline: engine closed")

// QueueReceipt hands a delivery receipt to the writer and returns at once:
// the SMPP reader never waits for a store write. ack is called once, from
// another goroutine, when the receipt's effect is committed (nil) or could
// not be (an error: the SMSC should deliver it again), so the client sends
// deliver_sm_resp only for what is durable. The receipt's part takes its
// status; the message settles as the worst of its parts once every part has
// one. The receipt is looked up in the forms MessageIDFormat allows (see
// Store.SaveChanges); one whose id is not recorded yet (it overtook its
// submit_sm_resp), or that auto cannot tell apart yet, is held and applied
// later, or counted unmatched after EarlyHold. A repeated receipt, or one for
// a message already final, changes nothing. The settle time is the time of
// arrival.
func (e *Engine) QueueReceipt(r campaignd.Receipt, ack func(error)) {
	st := campaignd.MessageState(strings.ToUpper(strings.TrimSpace(r.Stat)))
	if !st.Final() {
		e.log.Debug("non-final receipt ignored", slog.String(logMessageID, r.MessageID), slog.String(logStat, r.Stat))
		ack(nil)
		return
	}
	id := campaignd.CanonicalID(r.MessageID)
	if id == "" {
		e.events.ReceiptReceived(ReceiptUnmatched)
		e.log.Warn("receipt without a message id dropped", slog.String(logStat, r.Stat))
		ack(nil)
		return
	}
	req := &writeReq{receipts: []campaignd.ReceiptIn{{ID: id, Stat: st, At: e.now()}}, ackAsync: true}
	req.after = func(res *campaignd.ChangeResult, err error) {
		if err == nil {
			e.countReceipt(id, res.Receipts[0])
		}
		ack(err)
	}
	if !e.rcpt.push(req) {
		ack(errClosed)
	}
}

func (e *Engine) countReceipt(id, outcome string) {
	e.events.ReceiptReceived(outcome)
	switch outcome {
	case ReceiptDuplicate:
		e.log.Debug("duplicate receipt", slog.String(logMessageID, id))
	case ReceiptUnmatched:
		e.log.Warn("receipt for an id given to several messages awaiting receipts: dropped, not guessed",
			slog.String(logMessageID, id))
	case ReceiptHeld:
		e.log.Debug("receipt held until the SMSC's id scheme is known", slog.String(logMessageID, id))
	}
}

// CollisionEvents is implemented by Events that count message id
// collisions (package metrics does).
type CollisionEvents interface {
	ReceiptIDCollision()
}

// receiptQueue holds receipts from the SMPP readers until the writer takes
// them. It is unbounded: the SMSC bounds it, since it waits for the
// deliver_sm_resp of what it sent.
type receiptQueue struct {
	format string
	wake   chan struct{}

	mu     sync.Mutex
	q      []*writeReq
	closed bool

	// The writer's own: a pass over held receipts is due (from key from);
	// auto has not learned the SMSC's id scheme yet, and receipts wait for
	// it (passes then run every second, letting receipts vote).
	resolve  bool
	from     []byte
	learning bool
	heldSeen bool
}

// voteAge is how long a held receipt waits before it votes for an id
// scheme (at most a quarter of EarlyHold): by then its submit_sm_resp is
// recorded, so it cannot find another message in a wrong form for want of
// its own.
const voteAge = 3 * time.Second

func newReceiptQueue(format string) (*receiptQueue, error) {
	if format == "" {
		format = campaignd.IDFormatAuto
	}
	if !campaignd.ValidIDFormat(format) {
		return nil, fmt.Errorf("pipeline: message id format %q: want one of %s", format, strings.Join(campaignd.IDFormats, ", "))
	}
	// auto looks at held receipts once at start: a scheme learned before a
	// restart is in the store.
	auto := format == campaignd.IDFormatAuto
	return &receiptQueue{format: format, wake: make(chan struct{}, 1), resolve: auto, learning: auto, heldSeen: auto}, nil
}

func (q *receiptQueue) push(r *writeReq) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.q = append(q.q, r)
	q.mu.Unlock()
	q.signal()
	return true
}

func (q *receiptQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take appends the queued receipts to batch; close makes later pushes fail.
func (q *receiptQueue) take(batch []*writeReq, close bool) []*writeReq {
	q.mu.Lock()
	batch = append(batch, q.q...)
	clear(q.q)
	q.q = q.q[:0]
	q.closed = q.closed || close
	q.mu.Unlock()
	return batch
}

// writeReq is a group of changes and receipts for the writer. after runs on
// the writer goroutine once they are committed (or failed), or on another
// goroutine with ackAsync; its result has this request's Applied and
// Receipts only.
type writeReq struct {
	changes  []campaignd.Change
	receipts []campaignd.ReceiptIn
	after    func(*campaignd.ChangeResult, error)
	ackAsync bool // after may wait on the network (a deliver_sm_resp): not on the writer
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
func (e *Engine) writeWait(r *writeReq) (*campaignd.ChangeResult, error) {
	type result struct {
		res *campaignd.ChangeResult
		err error
	}
	ch := make(chan result, 1)
	r.after = func(res *campaignd.ChangeResult, err error) { ch <- result{res, err} }
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
// whatever requests are waiting, up to BatchSize changes, and every queued
// receipt, and commits them in one transaction, so the batch grows with the
// load and a lone receipt is written at once.
func (e *Engine) writer() {
	defer close(e.writerDone)
	var batch []*writeReq
	// Syncs, and passes over held receipts while auto learns, at most a
	// second apart (more often when EarlyHold is short, so they vote first).
	every := min(time.Second, e.earlyHold/4)
	tick := e.after(every)
	dirty := false
	for {
		batch = batch[:0]
		if e.rcpt.resolve {
			e.rcpt.signal()
		}
		select {
		case <-tick:
			tick = e.after(every)
			if e.rcpt.learning && e.rcpt.heldSeen && !e.rcpt.resolve {
				e.rcpt.resolve, e.rcpt.from = true, nil
			}
			if dirty {
				if err := e.db.Sync(); err != nil {
					e.log.Error("sync store", slog.Any(logError, err))
				}
				dirty = false
			}
			continue
		case r := <-e.writes:
			batch = append(batch, r)
		case <-e.rcpt.wake:
		case <-e.writerCtx.Done():
			for { // drain what was handed over before the stop
				select {
				case r := <-e.writes:
					e.flush([]*writeReq{r})
				default:
					if rs := e.rcpt.take(nil, true); len(rs) > 0 {
						e.flush(rs)
					}
					if err := e.db.Sync(); err != nil {
						e.log.Error("sync store", slog.Any(logError, err))
					}
					return
				}
			}
		}
		n := 0
		for _, r := range batch {
			n += len(r.changes)
		}
	more:
		for n < e.batchSize {
			select {
			case r := <-e.writes:
				batch = append(batch, r)
				n += len(r.changes)
			default:
				break more
			}
		}
		batch = e.rcpt.take(batch, false)
		if len(batch) == 0 && !e.rcpt.resolve {
			continue
		}
		e.flush(batch)
		dirty = true
	}
}

func (e *Engine) flush(batch []*writeReq) {
	var cs []campaignd.Change
	var rs []campaignd.ReceiptIn
	for _, r := range batch {
		cs = append(cs, r.changes...)
		rs = append(rs, r.receipts...)
	}
	opts := campaignd.SaveOptions{DayOf: e.dayOf, MatchTTL: e.receiptTimeout + e.earlyHold + 24*time.Hour,
		IDFormat: e.rcpt.format, ResolveHeld: e.rcpt.resolve, ResolveFrom: e.rcpt.from, VoteBefore: e.now().Add(-min(voteAge, e.earlyHold/4)),
		SettleBefore: e.now().Add(-e.earlyHold / 2)}
	var res *campaignd.ChangeResult
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if res, err = e.db.SaveChanges(cs, rs, opts); err == nil {
			break
		}
		e.log.Error("write message states", slog.Int(logCount, len(cs)+len(rs)), slog.Any(logError, err))
		<-e.after(time.Duration(10<<attempt) * time.Millisecond)
	}
	if err == nil {
		for _, s := range res.Settled {
			e.events.MessageSettled(string(s.State))
		}
		e.matchResult(res, opts.ResolveHeld)
	}
	var acks []func(error)
	ci, ri := 0, 0
	for _, r := range batch {
		if r.after == nil {
			continue
		}
		var sub *campaignd.ChangeResult
		if err == nil {
			sub = &campaignd.ChangeResult{Applied: res.Applied[ci : ci+len(r.changes)], Receipts: res.Receipts[ri : ri+len(r.receipts)]}
			ci, ri = ci+len(r.changes), ri+len(r.receipts)
		}
		if r.ackAsync {
			r, sub := r, sub
			acks = append(acks, func(err error) { r.after(sub, err) })
			continue
		}
		r.after(sub, err)
	}
	if len(acks) == 0 {
		return
	}
	// A receipt is acknowledged only once its effect is on disk: the
	// commit alone may still sit in the page cache, and a receipt acked
	// then lost to a power cut would never be sent again. One sync a batch,
	// off the writer (a sync covers every commit before it), as are the
	// acks, which write to the SMSC.
	e.acksWG.Add(1)
	go func() {
		defer e.acksWG.Done()
		ackErr := err
		if ackErr == nil {
			if ackErr = e.db.Sync(); ackErr != nil {
				e.log.Error("sync store before acknowledging receipts", slog.Any(logError, ackErr))
			}
		}
		for _, a := range acks {
			a(ackErr)
		}
	}()
}

// maxCollisionLogs bounds the collisions logged one by one per batch.
const maxCollisionLogs = 10

// matchResult reports what SaveChanges found about message ids and keeps
// the pass over held receipts going.
func (e *Engine) matchResult(res *campaignd.ChangeResult, resolving bool) {
	ce, _ := e.events.(CollisionEvents)
	for i, c := range res.Collisions {
		if ce != nil {
			ce.ReceiptIDCollision()
		}
		if i < maxCollisionLogs {
			e.log.Warn("smsc message id given to two messages awaiting receipts: its receipts will not be matched",
				slog.String(logMessageID, c.ID), slog.Uint64(logBID, c.NewBroadcast), slog.Uint64("index", uint64(c.NewIndex)),
				slog.Uint64("earlier_broadcast", c.OldBroadcast), slog.Uint64("earlier_index", uint64(c.OldIndex)))
		}
	}
	if n := len(res.Collisions); n > maxCollisionLogs {
		e.log.Warn("more smsc message id collisions", slog.Int(logCount, n-maxCollisionLogs))
	}
	if res.Unmatched > 0 {
		for range res.Unmatched {
			e.events.ReceiptReceived(ReceiptUnmatched)
		}
		e.log.Warn("held receipts for ids given to several messages dropped", slog.Int(logCount, res.Unmatched))
	}
	if e.rcpt.learning {
		if res.Scheme != "" {
			e.rcpt.learning = false
			if res.Learned == "" {
				e.log.Info("smsc message id scheme learned before", slog.String("scheme", res.Scheme))
			}
		}
		for _, o := range res.Receipts {
			if o == ReceiptHeld {
				e.rcpt.heldSeen = true
			}
		}
	}
	switch {
	case res.Learned != "":
		e.log.Info("smsc message id scheme learned from receipts; held receipts are matched by it",
			slog.String("scheme", res.Learned))
		e.rcpt.resolve, e.rcpt.from = true, nil
	case resolving:
		e.rcpt.from = res.ResolveNext
		e.rcpt.resolve = res.ResolveNext != nil
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
		return batch.add(campaignd.Change{BroadcastID: bid, Index: idx, From: campaignd.StateSubmitted,
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
