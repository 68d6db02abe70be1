package engine_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
	"campaignd/pipeline/engine"
)

// idSender answers with "id-<dest>" (and "id-<dest>-2" for a second part
// when parts says so).
func idSender(parts map[string]int, before func(m campaignd.OutMessage)) *fakeSender {
	s := &fakeSender{}
	s.SubmitFn = func(ctx context.Context, m campaignd.OutMessage) ([]string, error) {
		if before != nil {
			before(m)
		}
		ids := []string{"id-" + m.Dest}
		for p := 2; p <= parts[m.Dest]; p++ {
			ids = append(ids, "id-"+m.Dest+"-"+string(rune('0'+p)))
		}
		return ids, nil
	}
	return s
}

func (h *harness) receipt(tb testing.TB, id, stat string) {
	tb.Helper()
	if err := handleReceipt(h.eng, campaignd.Receipt{MessageID: id, Stat: stat}); err != nil {
		tb.Fatal(err)
	}
}

func TestReceiptMatchedAndRepeated(t *testing.T) {
	h := newHarness(t, nil, idSender(nil, nil), nil).start(t)
	b := mustBroadcast(t, h.db, 3, nil)
	h.mustAct(t, b.ID, campaignd.ActionSend, time.Time{})
	h.waitStatus(t, b.ID, campaignd.StatusCompleted)
	h.clk.Advance(time.Minute)
	h.receipt(t, "id-"+dest(0), "DELIVRD")
	h.receipt(t, "id-"+dest(1), "UNDELIV")
	h.receipt(t, "id-"+dest(1), "DELIVRD") // repeated: changes nothing
	h.receipt(t, "id-"+dest(2), "ENROUTE") // not final: ignored
	got := h.broadcast(t, b.ID)
	if want := (campaignd.Counts{Total: 3, Submitted: 1, Delivered: 1, Failed: 1}); got.Counts != want {
		t.Fatalf("counts = %+v", got.Counts)
	}
	ms := h.states(t, b.ID)
	if ms[0].State != campaignd.StateDelivered || !ms[0].SettledAt.Equal(engT0.Add(time.Minute)) || ms[1].State != campaignd.StateUndeliverable {
		t.Fatalf("states = %+v / %+v", ms[0], ms[1])
	}
	if h.events.Receipts("matched") != 2 || h.events.Receipts("duplicate") != 1 {
		t.Fatalf("receipt events = %v", h.events.receipts)
	}
	var day []uint64
	h.db.ReportMessages(engT0.Format("20060102"), func(m *campaignd.Message) error { day = append(day, m.TrackingID); return nil })
	if len(day) != 2 {
		t.Fatalf("settled index = %v", day)
	}
}

func TestReceiptBeforeSubmitResponse(t *testing.T) {
	var h *harness
	// The receipt overtakes the submit_sm_resp: it arrives (and is stored)
	// before Submit returns the id.
	s := idSender(nil, func(m campaignd.OutMessage) {
		if err := handleReceipt(h.eng, campaignd.Receipt{MessageID: "id-" + m.Dest, Stat: "DELIVRD"}); err != nil {
			t.Error(err)
		}
	})
	h = newHarness(t, nil, s, nil).start(t)
	b := mustBroadcast(t, h.db, 20, nil)
	h.mustAct(t, b.ID, campaignd.ActionSend, time.Time{})
	h.waitStatus(t, b.ID, campaignd.StatusCompleted)
	testenv.Wait(t, "every message delivered", func() bool { return h.broadcast(t, b.ID).Counts.Delivered == 20 })
	for _, m := range h.states(t, b.ID) {
		if m.State != campaignd.StateDelivered || m.SubmittedAt.IsZero() || m.SettledAt.IsZero() {
			t.Fatalf("message %d = %+v", m.Index, m)
		}
	}
	if h.events.Receipts("early") != 20 {
		t.Fatalf("receipt events = %v", h.events.receipts)
	}
	// Nothing is left held: the sweep finds nothing unmatched.
	h.clk.Advance(11 * time.Minute)
	time.Sleep(20 * time.Millisecond)
	if n := h.events.Receipts("unmatched"); n != 0 {
		t.Fatalf("%d receipts counted unmatched", n)
	}
}

func TestReceiptUnmatchedIsDroppedAfterHold(t *testing.T) {
	h := newHarness(t, nil, nil, nil).start(t)
	h.receipt(t, "nobody", "DELIVRD")
	h.receipt(t, "nobody", "DELIVRD") // a repeat of a held receipt
	if h.events.Receipts("early") != 1 || h.events.Receipts("duplicate") != 1 {
		t.Fatalf("receipt events = %v", h.events.receipts)
	}
	h.clk.Advance(10 * time.Minute)
	testenv.AdvanceUntil(t, h.clk, time.Second, "unmatched receipt dropped", func() bool { return h.events.Receipts("unmatched") == 1 })
	h.clk.Advance(30 * time.Minute)
	time.Sleep(10 * time.Millisecond)
	if n := h.events.Receipts("unmatched"); n != 1 {
		t.Fatalf("unmatched counted %d times", n)
	}
}

func TestReceiptMultipartSettlesAsWorstPart(t *testing.T) {
	h := newHarness(t, nil, idSender(map[string]int{dest(0): 2, dest(1): 2}, nil), nil).start(t)
	b := mustBroadcast(t, h.db, 2, nil)
	h.mustAct(t, b.ID, campaignd.ActionSend, time.Time{})
	h.waitStatus(t, b.ID, campaignd.StatusCompleted)
	h.receipt(t, "id-"+dest(0)+"-2", "UNDELIV")
	if m := h.states(t, b.ID)[0]; m.State != campaignd.StateSubmitted || m.Parts[1] != campaignd.StateUndeliverable {
		t.Fatalf("after one part: %+v", m)
	}
	h.receipt(t, "id-"+dest(0), "DELIVRD")
	h.receipt(t, "id-"+dest(1), "DELIVRD")
	h.receipt(t, "id-"+dest(1)+"-2", "DELIVRD")
	ms := h.states(t, b.ID)
	if ms[0].State != campaignd.StateUndeliverable || ms[1].State != campaignd.StateDelivered {
		t.Fatalf("states = %s, %s", ms[0].State, ms[1].State)
	}
	if got := h.broadcast(t, b.ID).Counts; got.Failed != 1 || got.Delivered != 1 || got.Submitted != 0 {
		t.Fatalf("counts = %+v", got)
	}
}

func TestReceiptTimeoutSettlesUnknown(t *testing.T) {
	h := newHarness(t, nil, idSender(map[string]int{dest(2): 2}, nil), func(o *engine.Options) {
		o.ReceiptTimeout = 72 * time.Hour
	}).start(t)
	b := mustBroadcast(t, h.db, 3, nil)
	h.mustAct(t, b.ID, campaignd.ActionSend, time.Time{})
	h.waitStatus(t, b.ID, campaignd.StatusCompleted)
	h.receipt(t, "id-"+dest(0), "DELIVRD")
	h.receipt(t, "id-"+dest(2)+"-2", "EXPIRED") // one part of two
	h.clk.Advance(71 * time.Hour)
	time.Sleep(10 * time.Millisecond)
	if got := h.broadcast(t, b.ID).Counts; got.Submitted != 2 {
		t.Fatalf("settled before the timeout: %+v", got)
	}
	h.clk.Advance(time.Hour)
	testenv.AdvanceUntil(t, h.clk, time.Second, "receipt timeout", func() bool { return h.broadcast(t, b.ID).Counts.Submitted == 0 })
	ms := h.states(t, b.ID)
	if ms[0].State != campaignd.StateDelivered || ms[1].State != campaignd.StateUnknown || ms[2].State != campaignd.StateExpired {
		t.Fatalf("states = %s %s %s", ms[0].State, ms[1].State, ms[2].State)
	}
	if at := ms[1].SettledAt; at.Before(engT0.Add(72*time.Hour)) || at.After(engT0.Add(72*time.Hour+time.Minute)) || ms[1].SubmittedAt.IsZero() || len(ms[1].SMSCIDs) != 1 {
		t.Fatalf("timed-out message = %+v", ms[1])
	}
	got := h.broadcast(t, b.ID).Counts
	if got.Unknown != 1 || got.Failed != 1 || got.Delivered != 1 {
		t.Fatalf("counts = %+v", got)
	}
	// A late receipt changes nothing.
	h.receipt(t, "id-"+dest(1), "DELIVRD")
	if m := h.states(t, b.ID)[1]; m.State != campaignd.StateUnknown {
		t.Fatalf("late receipt changed a final state: %s", m.State)
	}
	testenv.Wait(t, "sweep timer gone", func() bool {
		_, ok, _ := h.wheel.Due(engine.TimerReceipt, strconv.FormatUint(b.ID, 10))
		return !ok
	})
}

// handleReceipt queues a receipt and waits for its outcome: the receipt is
// durable when it returns nil.
func handleReceipt(eng *engine.Engine, r campaignd.Receipt) error {
	ch := make(chan error, 1)
	eng.QueueReceipt(r, func(err error) { ch <- err })
	return <-ch
}
