package engine_test

import (
	"context"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
	"campaignd/pipeline/engine"
)

// TestEngineCloseGraceOnTheClock: Close lets a submit in flight finish for
// ResponseTimeout (and a second) of the engine's clock, not of real time:
// stepping the fake clock past it ends the wait, and the message cut off
// stays queued.
func TestEngineCloseGraceOnTheClock(t *testing.T) {
	const timeout = time.Hour // far more than a test may wait in real time
	entered := make(chan struct{}, 1)
	sender := &fakeSender{SubmitFn: func(ctx context.Context, m campaignd.OutMessage) ([]string, error) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-ctx.Done() // an SMSC that never answers
		return nil, ctx.Err()
	}}
	h := newHarness(t, nil, sender, func(o *engine.Options) { o.Window = 1; o.ResponseTimeout = timeout })
	if err := h.eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.wheel.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.wheel.Close()
	b := mustBroadcast(t, h.db, 1, func(b *campaignd.Broadcast) { b.Status = campaignd.StatusSending })
	if err := h.eng.Admit(b); err != nil {
		t.Fatal(err)
	}
	testenv.Wait(t, "a submit in flight", func() bool { return len(entered) == 1 })

	t0 := h.clk.Now()
	closed := make(chan struct{})
	go func() {
		h.eng.Close(context.Background())
		close(closed)
	}()
	h.clk.Advance(timeout / 2)
	select {
	case <-closed:
		t.Fatal("Close returned before the grace of the clock was over")
	case <-time.After(50 * time.Millisecond):
	}
	testenv.AdvanceUntil(t, h.clk, timeout/4, "Close to return", func() bool {
		select {
		case <-closed:
			return true
		default:
			return false
		}
	})
	if waited := h.clk.Now().Sub(t0); waited < timeout+time.Second {
		t.Fatalf("Close returned after %v of the clock, want at least %v", waited, timeout+time.Second)
	}
	if m, err := h.db.Message(b.ID, 0); err != nil || m.State != campaignd.StateQueued {
		t.Fatalf("message 0 = %+v, %v; want it still queued", m, err)
	}
}
