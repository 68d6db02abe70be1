package engine

import (
	"context"
	"log/slog"
	"time"

	"campaignd"
)

// SuppressionChecker is the engine's view of the suppression list: a store
// that has one (*store.DB does) is asked about every message right before
// its submit, so a number that opted out after its file was ingested — even
// while its broadcast is sending — is never messaged (SPEC §11). An engine
// store without it sends everything.
type SuppressionChecker interface {
	IsSuppressed(number string) (bool, error)
}

// SuppressEvents is implemented by an engine Events that counts messages
// settled as suppressed (package metrics does).
type SuppressEvents interface {
	MessageSuppressed()
}

// skipSuppressed settles j's message as suppressed, without submitting it,
// when its number is on the suppression list, and reports whether it did.
// A failed look-up (the store not answering) puts the message back and
// pauses this worker for 100 ms: it reports true, and the message is sent
// only once the list could be read, never to a number that may have opted
// out.
func (e *Engine) skipSuppressed(ctx context.Context, j *job) bool {
	sc, ok := e.db.(SuppressionChecker)
	if !ok {
		return false
	}
	m := j.m
	yes, err := sc.IsSuppressed(m.Recipient)
	if err != nil {
		e.log.Error("suppression check failed; the message waits", slog.Uint64(logBID, m.BroadcastID),
			slog.Uint64("index", uint64(m.Index)), slog.Any(logError, err))
		e.requeue(j)
		select { // no busy loop while the store cannot be read
		case <-e.after(100 * time.Millisecond):
		case <-ctx.Done():
		}
		return true
	}
	if !yes {
		return false
	}
	c := campaignd.Change{BroadcastID: m.BroadcastID, Index: m.Index, From: campaignd.StateQueued,
		To: campaignd.StateSuppressed, At: e.now()}
	e.write(&writeReq{changes: []campaignd.Change{c}, after: func(res *campaignd.ChangeResult, err error) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if err != nil {
			j.r.requeue = append(j.r.requeue, m) // not recorded: it is checked again
			e.kickLocked()
			return
		}
		if res.Applied[0] {
			if se, ok := e.events.(SuppressEvents); ok {
				se.MessageSuppressed()
			}
		}
		delete(j.r.claimed, m.Index)
		delete(j.r.retryAfter, m.Index) // a retry timer finds nothing queued
		e.maybeCompleteLocked(j.r)
	}})
	return true
}
