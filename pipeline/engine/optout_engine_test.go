package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
	"campaignd/pipeline/engine"
)

func suppressNumber(tb testing.TB, h *harness, number string) {
	tb.Helper()
	if _, err := h.db.Suppress(campaignd.Suppression{Number: number, Reason: campaignd.SuppressReply, By: "sms"}); err != nil {
		tb.Fatal(err)
	}
}

// A number suppressed after ingest — before the send, or while it runs
// (at the head, the middle or the end of the queue) — is never submitted:
// its message settles as suppressed, in the counts, the day's report
// index and the events; the broadcast still completes.
func TestEngineSettlesSuppressedMessages(t *testing.T) {
	const n = 200
	var mu sync.Mutex
	var h *harness
	s := &fakeSender{}
	// While message 10 is submitted, replies arrive from the numbers of
	// messages 11, 100 and 199 (still queued).
	s.SubmitFn = func(ctx context.Context, m campaignd.OutMessage) ([]string, error) {
		if m.Dest == dest(10) {
			mu.Lock()
			for _, i := range []int{11, 100, 199} {
				suppressNumber(t, h, dest(i))
			}
			mu.Unlock()
		}
		return []string{"id-" + m.Dest}, nil
	}
	h = newHarness(t, nil, s, func(o *engine.Options) { o.Window = 1 }).start(t)
	b := mustBroadcast(t, h.db, n, nil)
	suppressNumber(t, h, dest(0)) // before the send
	h.mustAct(t, b.ID, campaignd.ActionSend, time.Time{})
	got := h.waitStatus(t, b.ID, campaignd.StatusCompleted)
	if got.Counts.Suppressed != 4 || got.Counts.Submitted != n-4 || got.Counts.Queued != 0 {
		t.Fatalf("counts = %+v, want 4 suppressed", got.Counts)
	}
	for _, i := range []int{0, 11, 100, 199} {
		if c := h.sender.Count(dest(i)); c != 0 {
			t.Errorf("suppressed message %d submitted %d times", i, c)
		}
	}
	suppressedAt := map[uint32]bool{}
	for _, m := range h.states(t, b.ID) {
		if m.State == campaignd.StateSuppressed {
			suppressedAt[m.Index] = true
			if !m.SettledAt.Equal(engT0) || !m.SubmittedAt.IsZero() || len(m.SMSCIDs) != 0 {
				t.Errorf("message %d: %+v", m.Index, m)
			}
		}
	}
	if len(suppressedAt) != 4 || !suppressedAt[0] || !suppressedAt[11] || !suppressedAt[100] || !suppressedAt[199] {
		t.Fatalf("suppressed messages %v", suppressedAt)
	}
	if e := h.events.Settled(string(campaignd.StateSuppressed)); e != 4 {
		t.Errorf("MessageSettled(suppressed) %d times, want 4", e)
	}
	// They are in the report of the day they were settled.
	var reported int
	h.db.ReportMessages(engT0.Format("20060102"), func(m *campaignd.Message) error {
		if m.State == campaignd.StateSuppressed {
			reported++
			if m.State.Reported() != "SUPPRESSED" {
				t.Errorf("reported as %s", m.State.Reported())
			}
		}
		return nil
	})
	if reported != 4 {
		t.Errorf("%d suppressed messages in the day's report, want 4", reported)
	}
}

// A message refused with a temporary error whose number opts out before
// the retry is not submitted again.
func TestEngineSuppressedBeforeRetry(t *testing.T) {
	var h *harness
	s := &fakeSender{}
	var mu sync.Mutex
	refused := false
	s.SubmitFn = func(ctx context.Context, m campaignd.OutMessage) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		if m.Dest == dest(1) && !refused {
			refused = true
			suppressNumber(t, h, dest(1))
			return nil, &campaignd.SubmitError{Status: 0x58, Temporary: true}
		}
		return []string{"id-" + m.Dest}, nil
	}
	h = newHarness(t, nil, s, nil).start(t)
	b := mustBroadcast(t, h.db, 3, nil)
	h.mustAct(t, b.ID, campaignd.ActionSend, time.Time{})
	testenv.Wait(t, "retry timer", func() bool { return h.wheel.Pending() >= 1 && h.sender.Calls() == 3 })
	h.clk.Advance(5 * time.Second)
	got := h.advanceToStatus(t, b.ID, campaignd.StatusCompleted)
	if got.Counts.Suppressed != 1 || got.Counts.Submitted != 2 {
		t.Fatalf("counts = %+v", got.Counts)
	}
	if c := h.sender.Count(dest(1)); c != 1 {
		t.Fatalf("submitted %d times, want the one refused attempt", c)
	}
}
