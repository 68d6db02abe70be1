package engine_test

import (
	"context"
	"testing"
	"time"

	"campaignd"
	"campaignd/pipeline/engine"
)

// TestEngineCloseRacingContextEnd: when the engine's context ends and Close is called at the same
// time (as a process shutting down does), the second Close must not return before the first has
// stopped the submitters and the writer: the store is closed right after it.
func TestEngineCloseRacingContextEnd(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 16)
	sender := &fakeSender{SubmitFn: func(ctx context.Context, m campaignd.OutMessage) ([]string, error) {
		entered <- struct{}{}
		<-release
		return []string{"id-" + m.Dest}, nil
	}}
	h := newHarness(t, nil, sender, func(o *engine.Options) { o.Window = 1; o.ResponseTimeout = 30 * time.Second })
	ctx, cancel := context.WithCancel(context.Background())
	if err := h.eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.wheel.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.wheel.Close()
	b := mustBroadcast(t, h.db, 3, func(b *campaignd.Broadcast) { b.Status = campaignd.StatusSending })
	if err := h.eng.Admit(b); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no submit")
	}
	cancel() // the engine's own goroutine starts closing
	time.Sleep(50 * time.Millisecond)
	closed := make(chan struct{})
	go func() {
		h.eng.Close(context.Background())
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned while a submit was still in progress")
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not return")
	}
	// The submit that was in progress is recorded: the writer ran before Close returned.
	m, err := h.db.Message(b.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != campaignd.StateSubmitted {
		t.Fatalf("message 0 is %s after Close, want submitted", m.State)
	}
}
