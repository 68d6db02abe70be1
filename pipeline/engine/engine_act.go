package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"campaignd"
)

// SystemUser is the audit log's user for transitions the engine makes by
// itself (a scheduled broadcast starting).
const SystemUser = "system"

// Admit starts what a newly committed broadcast needs: a timer when it is
// scheduled, a run when it is sending. Ingest calls it after the commit;
// Start does the same for broadcasts whose Admit a crash prevented. A
// broadcast that starts sending at once (its file's date had passed) gets
// its Started time and a system entry in the audit log saying why.
func (e *Engine) Admit(b *campaignd.Broadcast) error {
	switch b.Status {
	case campaignd.StatusScheduled:
		return e.wheel.Schedule(TimerBroadcast, idOf(b.ID), b.ScheduledAt)
	case campaignd.StatusSending:
		if b.StartedAt.IsZero() {
			b = e.recordPastStart(b)
		}
		e.startRun(b, false)
	}
	return nil
}

// recordPastStart sets the Started time of a broadcast admitted sending
// and records the system's start with its reason. A failure is logged: the
// broadcast is sent all the same.
func (e *Engine) recordPastStart(b *campaignd.Broadcast) *campaignd.Broadcast {
	e.actMu.Lock()
	defer e.actMu.Unlock()
	now := e.now()
	nb, err := e.db.UpdateBroadcast(b.ID, func(s *campaignd.Broadcast) error {
		if s.Status != campaignd.StatusSending || !s.StartedAt.IsZero() {
			return errNoChange
		}
		s.StartedAt = now
		return nil
	})
	if err != nil {
		if !errors.Is(err, errNoChange) {
			e.log.Error("record start", slog.Uint64(logBID, b.ID), slog.Any(logError, err))
		}
		return b
	}
	detail := "started at once: the file had no future date"
	if !nb.ScheduledAt.IsZero() {
		detail = fmt.Sprintf("started at once: its date %s had passed when the file was ingested", nb.ScheduledAt.In(e.loc).Format(time.RFC3339))
	}
	if err := e.db.Audit(campaignd.AuditEntry{At: now, User: SystemUser, BroadcastID: b.ID, Action: "start", Detail: detail}); err != nil {
		e.log.Error("audit", slog.Uint64(logBID, b.ID), slog.Any(logError, err))
	}
	return nb
}

// Act carries out an operator action (SPEC §4) and records it in the audit
// log: ECONFLICT when the action is not allowed in the broadcast's status,
// EINVALID for a schedule date that is not in the future.
func (e *Engine) Act(ctx context.Context, req campaignd.ActionRequest) (*campaignd.Broadcast, error) {
	e.actMu.Lock()
	defer e.actMu.Unlock()
	b, err := e.db.Broadcast(req.BroadcastID)
	if err != nil {
		return nil, err
	}
	from := b.Status
	to, err := campaignd.Transition(from, req.Action)
	if err != nil {
		return nil, err
	}
	if err := checkValidityRequest(req); err != nil {
		return nil, err
	}
	now := e.now()
	detail := fmt.Sprintf("%s -> %s", from, to)
	bid, id := b.ID, idOf(b.ID)
	// oldValidity is the validity the broadcast had when req sets one.
	var oldValidity time.Duration
	// change applies fn (and req's validity) to the stored broadcast if
	// its status is still from.
	change := func(fn func(*campaignd.Broadcast)) (*campaignd.Broadcast, error) {
		return e.db.UpdateBroadcast(bid, func(b *campaignd.Broadcast) error {
			if b.Status != from {
				return campaignd.NotAllowed(req.Action, b.Status)
			}
			b.Status = to
			if req.Validity != 0 {
				oldValidity, b.Validity = b.Validity, req.Validity
			}
			fn(b)
			return nil
		})
	}
	switch req.Action {
	case campaignd.ActionSend:
		// Send now clears the schedule: the date no longer says when it
		// goes (the audit entry keeps it).
		was := b.ScheduledAt
		if b, err = change(func(b *campaignd.Broadcast) { b.StartedAt, b.ScheduledAt = now, time.Time{} }); err != nil {
			return nil, err
		}
		if from == campaignd.StatusScheduled && !was.IsZero() {
			detail = fmt.Sprintf("%s -> %s, was scheduled for %s", from, to, was.In(e.loc).Format(time.RFC3339))
		}
		if err := e.wheel.Cancel(TimerBroadcast, id); err != nil {
			e.log.Error("cancel schedule timer", slog.Uint64(logBID, bid), slog.Any(logError, err))
		}
		e.startRun(b, false)
	case campaignd.ActionSchedule:
		if req.At.IsZero() || !req.At.After(now) {
			return nil, campaignd.Errorf(campaignd.EINVALID, "The date must be in the future.")
		}
		// Checked before anything changes: a date past the horizon is
		// refused whole, never stored.
		if err := campaignd.CheckHorizon(now, req.At); err != nil {
			return nil, err
		}
		if b, err = change(func(b *campaignd.Broadcast) { b.ScheduledAt = req.At }); err != nil {
			return nil, err
		}
		if err := e.wheel.Schedule(TimerBroadcast, id, req.At); err != nil {
			return nil, err
		}
		detail = fmt.Sprintf("%s -> %s at %s", from, to, req.At.In(e.loc).Format(time.RFC3339))
	case campaignd.ActionPause:
		e.setRunStatus(bid, campaignd.StatusPaused) // no new submit from now on
		if b, err = change(func(*campaignd.Broadcast) {}); err != nil {
			e.setRunStatus(bid, from)
			return nil, err
		}
	case campaignd.ActionResume:
		if b, err = change(func(b *campaignd.Broadcast) { b.Wait = "" }); err != nil {
			return nil, err
		}
		e.startRun(b, true)
	case campaignd.ActionCancel:
		if b, err = change(func(b *campaignd.Broadcast) { b.CompletedAt, b.Wait = now, "" }); err != nil {
			return nil, err
		}
		e.setRunStatus(bid, campaignd.StatusCancelled)
		e.startCancel(bid)
	case campaignd.ActionValidity:
		if b, err = change(func(*campaignd.Broadcast) {}); err != nil {
			return nil, err
		}
	case campaignd.ActionDelete:
		if err := e.wheel.Cancel(TimerBroadcast, id); err != nil {
			return nil, err
		}
		if err := e.db.DeleteBroadcast(bid); err != nil {
			return nil, err
		}
		detail = fmt.Sprintf("deleted %s broadcast %q", from, b.Name)
	}
	if req.Action != campaignd.ActionValidity {
		err = e.db.Audit(campaignd.AuditEntry{At: now, User: req.User, RemoteAddr: req.RemoteAddr,
			BroadcastID: bid, Action: string(req.Action), Detail: detail})
		if err != nil {
			e.log.Error("audit", slog.Uint64(logBID, bid), slog.Any(logError, err))
		}
	}
	if req.Validity != 0 {
		err = e.db.Audit(campaignd.AuditEntry{At: now, User: req.User, RemoteAddr: req.RemoteAddr,
			BroadcastID: bid, Action: string(campaignd.ActionValidity), Detail: validityDetail(oldValidity, req.Validity)})
		if err != nil {
			e.log.Error("audit", slog.Uint64(logBID, bid), slog.Any(logError, err))
		}
	}
	e.log.Info("broadcast action", slog.Uint64(logBID, bid), slog.String("action", string(req.Action)),
		slog.String("user", req.User), slog.String(logStatus, string(to)))
	return b, nil
}

// checkValidityRequest refuses a validity period out of bounds, one given
// with an action that cannot set it, and the validity action without one:
// before anything changes.
func checkValidityRequest(req campaignd.ActionRequest) error {
	switch {
	case req.Validity != 0:
		if req.Action != campaignd.ActionSend && req.Action != campaignd.ActionSchedule && req.Action != campaignd.ActionValidity {
			return campaignd.Errorf(campaignd.EINVALID, "A validity period can be set only with send or schedule.")
		}
		return campaignd.CheckValidity(req.Validity)
	case req.Action == campaignd.ActionValidity:
		return campaignd.Errorf(campaignd.EINVALID, "Missing validity: write a duration such as %s.", campaignd.ValidityHint)
	}
	return nil
}

// validityDetail is the audit detail of a change of validity, old -> new;
// "default" is the configured smpp.validity.
func validityDetail(old, new time.Duration) string {
	o := "default"
	if old != 0 {
		o = campaignd.FormatValidity(old)
	}
	return fmt.Sprintf("validity %s -> %s", o, campaignd.FormatValidity(new))
}

// setRunStatus changes the in-memory status of bid's run, if it has one. A
// cancelled run gives back the messages it holds but has not handed out.
func (e *Engine) setRunStatus(bid uint64, s campaignd.Status) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.runs[bid]
	if r == nil {
		return
	}
	r.status = s
	if s == campaignd.StatusCancelled {
		for _, m := range append(r.buf, r.requeue...) {
			delete(r.claimed, m.Index)
		}
		r.buf, r.requeue = nil, nil
		r.exhausted = true
	}
	e.kickLocked()
}

// startCancel settles every queued message of bid as cancelled, in the
// background; messages in flight settle when their outcome is known.
func (e *Engine) startCancel(bid uint64) {
	e.background(func() {
		if err := e.cancelRest(bid); err != nil {
			e.log.Error("cancel messages", slog.Uint64(logBID, bid), slog.Any(logError, err))
		}
	})
}

func (e *Engine) cancelRest(bid uint64) error {
	now := e.now()
	batch := e.newBatch()
	err := e.db.Messages(bid, 0, func(m *campaignd.Message) error {
		if m.State != campaignd.StateQueued {
			return nil
		}
		e.mu.Lock()
		r := e.runs[bid]
		claimed := false
		if r != nil {
			_, claimed = r.claimed[m.Index]
		}
		e.mu.Unlock()
		if claimed {
			return nil // in flight: settled by its outcome
		}
		return batch.add(campaignd.Change{BroadcastID: bid, Index: m.Index, From: campaignd.StateQueued,
			To: campaignd.StateCancelled, Attempts: m.Attempts, At: now})
	})
	if err != nil {
		return err
	}
	if err := batch.flush(); err != nil {
		return err
	}
	e.mu.Lock()
	if r := e.runs[bid]; r != nil && r.status == campaignd.StatusCancelled {
		e.dropRunLocked(r)
	}
	e.mu.Unlock()
	return nil
}

// onBroadcastTimer starts a scheduled broadcast at its date.
func (e *Engine) onBroadcastTimer(ctx context.Context, id string, due time.Time) error {
	bid, err := parseUint(id)
	if err != nil {
		return nil
	}
	e.actMu.Lock()
	defer e.actMu.Unlock()
	now := e.now()
	var moved time.Time
	b, err := e.db.UpdateBroadcast(bid, func(b *campaignd.Broadcast) error {
		if b.Status != campaignd.StatusScheduled {
			return errNoChange
		}
		if b.ScheduledAt.After(now) {
			moved = b.ScheduledAt // the timer lagged a change of date
			return errNoChange
		}
		b.Status, b.StartedAt = campaignd.StatusSending, now
		return nil
	})
	switch {
	case errors.Is(err, errNoChange) && !moved.IsZero():
		return e.wheel.Schedule(TimerBroadcast, id, moved)
	case errors.Is(err, errNoChange), campaignd.ErrorCode(err) == campaignd.ENOTFOUND:
		return nil
	case err != nil:
		return err
	}
	if err := e.db.Audit(campaignd.AuditEntry{At: now, User: SystemUser, BroadcastID: bid, Action: "start",
		Detail: fmt.Sprintf("scheduled for %s", b.ScheduledAt.In(e.loc).Format(time.RFC3339))}); err != nil {
		e.log.Error("audit", slog.Uint64(logBID, bid), slog.Any(logError, err))
	}
	e.log.Info("scheduled broadcast starts", slog.Uint64(logBID, bid), slog.Duration(logLateness, now.Sub(b.ScheduledAt)))
	e.startRun(b, false)
	return nil
}

// onRetryTimer hands a message refused with a temporary error back to its
// run.
func (e *Engine) onRetryTimer(ctx context.Context, id string, due time.Time) error {
	bid, idx, ok := parseRetryID(id)
	if !ok {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.retryLocked(bid, idx)
}

func (e *Engine) retryLocked(bid uint64, idx uint32) error {
	r := e.runs[bid]
	if r == nil || r.status == campaignd.StatusCancelled {
		// Not sending (paused before a restart, or cancelled): a resumed
		// run finds the message queued, without a timer.
		return nil
	}
	if _, ok := r.claimed[idx]; ok {
		r.retryAfter[idx] = struct{}{} // its last outcome is being written: retry once it is
		return nil
	}
	// Read under the lock: a message claimed and recorded since cannot be
	// taken for queued.
	m, err := e.db.Message(bid, idx)
	if err != nil {
		if campaignd.ErrorCode(err) == campaignd.ENOTFOUND {
			return nil
		}
		return err
	}
	if m.State != campaignd.StateQueued {
		return nil
	}
	r.claimed[idx] = struct{}{}
	if idx >= r.pos {
		r.skip[idx] = struct{}{}
	}
	r.requeue = append(r.requeue, m)
	e.kickLocked()
	return nil
}

// onWindowTimer: the send window opens.
func (e *Engine) onWindowTimer(ctx context.Context, id string, due time.Time) error {
	e.mu.Lock()
	e.windowArmed = false
	e.kickLocked()
	e.mu.Unlock()
	return nil
}

func parseUint(s string) (uint64, error) { return strconv.ParseUint(s, 10, 64) }

// changeBatch collects state changes and writes them through the engine's
// writer in transactions of at most batchSize, for sweeps over many
// messages (cancel, receipt timeouts).
type changeBatch struct {
	e       *Engine
	changes []campaignd.Change
}

func (e *Engine) newBatch() *changeBatch { return &changeBatch{e: e} }

// add queues c, writing the batch once it is full.
func (b *changeBatch) add(c campaignd.Change) error {
	b.changes = append(b.changes, c)
	if len(b.changes) >= b.e.batchSize {
		return b.flush()
	}
	return nil
}

// flush writes what is queued and waits until it is durable.
func (b *changeBatch) flush() error {
	if len(b.changes) == 0 {
		return nil
	}
	_, err := b.e.writeWait(&writeReq{changes: b.changes})
	b.changes = nil
	return err
}
