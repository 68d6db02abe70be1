package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"campaignd"
	"campaignd/smpp"
)

// The validity action sets a broadcast's validity period while it has not
// started, with bounds checked before anything changes, and leaves an audit
// entry old -> new; send and schedule may set it too.
func TestEngineValidity(t *testing.T) {
	h := newHarness(t, nil, &fakeSender{BoundFn: func() bool { return false }}, nil).start(t)
	ctx := context.Background()
	b := mustBroadcast(t, h.db, 3, nil)
	act := func(a campaignd.Action, at time.Time, v time.Duration) (*campaignd.Broadcast, error) {
		return h.eng.Act(ctx, campaignd.ActionRequest{BroadcastID: b.ID, Action: a, At: at, Validity: v, User: "ana", RemoteAddr: "10.0.0.7"})
	}
	trail := func() []campaignd.AuditEntry {
		t.Helper()
		log, err := h.db.AuditLog(b.ID)
		if err != nil {
			t.Fatal(err)
		}
		return log
	}

	for _, v := range []time.Duration{0, 9 * time.Minute, 15*24*time.Hour + time.Second} {
		if _, err := act(campaignd.ActionValidity, time.Time{}, v); campaignd.ErrorCode(err) != campaignd.EINVALID {
			t.Fatalf("validity %v: %v, want EINVALID", v, err)
		}
	}
	if got := h.broadcast(t, b.ID); got.Validity != 0 || len(trail()) != 0 {
		t.Fatalf("refused validity changed something: %+v, %+v", got, trail())
	}

	got, err := act(campaignd.ActionValidity, time.Time{}, 2*time.Hour)
	if err != nil || got.Validity != 2*time.Hour || got.Status != campaignd.StatusPending {
		t.Fatalf("validity 2h: %+v, %v", got, err)
	}
	if log := trail(); len(log) != 1 || log[0].Action != "validity" || log[0].Detail != "validity default -> 2h" || log[0].User != "ana" {
		t.Fatalf("audit = %+v", log)
	}
	if got := h.broadcast(t, b.ID); got.Validity != 2*time.Hour {
		t.Fatalf("stored validity %v", got.Validity)
	}

	// A schedule with an out-of-bounds validity is refused whole.
	at := engT0.Add(time.Hour)
	if _, err := act(campaignd.ActionSchedule, at, 16*24*time.Hour); campaignd.ErrorCode(err) != campaignd.EINVALID {
		t.Fatalf("schedule with 16d: %v", err)
	}
	if got := h.broadcast(t, b.ID); got.Status != campaignd.StatusPending || got.Validity != 2*time.Hour {
		t.Fatalf("after a refused schedule: %+v", got)
	}
	if got, err = act(campaignd.ActionSchedule, at, 24*time.Hour); err != nil || got.Validity != 24*time.Hour || got.Status != campaignd.StatusScheduled {
		t.Fatalf("schedule with 1d: %+v, %v", got, err)
	}
	if log := trail(); len(log) != 3 || log[1].Action != "schedule" || log[2].Action != "validity" || log[2].Detail != "validity 2h -> 1d" {
		t.Fatalf("audit = %+v", log)
	}
	// Only send and schedule carry a validity.
	if _, err := act(campaignd.ActionDelete, time.Time{}, time.Hour); campaignd.ErrorCode(err) != campaignd.EINVALID {
		t.Fatalf("delete with a validity: %v", err)
	}
	if _, err := act(campaignd.ActionSend, time.Time{}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := act(campaignd.ActionValidity, time.Time{}, time.Hour); campaignd.ErrorCode(err) != campaignd.ECONFLICT {
		t.Fatalf("validity while sending: %v, want ECONFLICT", err)
	}
	if got := h.broadcast(t, b.ID); got.Validity != 24*time.Hour {
		t.Fatalf("validity changed while sending: %v", got.Validity)
	}
}

// A broadcast's validity period reaches the SMSC in each of its submit_sm;
// a broadcast without one gets the client's default.
func TestEngineValiditySMPP(t *testing.T) {
	var mu sync.Mutex
	got := map[string]string{} // destination -> validity_period
	env := startSMPP(t, smppConfig{
		sim: smpp.SimOptions{DeliveredPercent: 100, OnSubmit: func(s smpp.SimSubmit) {
			mu.Lock()
			got[s.Dest] = s.Validity
			mu.Unlock()
		}},
		client: smpp.Options{TPS: 1000, Window: 10, Validity: 48 * time.Hour},
	})
	ctx := context.Background()
	own := mustBroadcast(t, env.db, 3, nil)
	if _, err := env.eng.Act(ctx, campaignd.ActionRequest{BroadcastID: own.ID, Action: campaignd.ActionSend, Validity: 90 * time.Minute, User: "test"}); err != nil {
		t.Fatal(err)
	}
	env.waitFinal(t, own, 30*time.Second)
	mu.Lock()
	for d, v := range got {
		if v != "000000013000000R" {
			t.Errorf("submit to %s: validity %q, want 90 minutes (000000013000000R)", d, v)
		}
	}
	n := len(got)
	clear(got)
	mu.Unlock()
	if n != 3 {
		t.Fatalf("%d destinations submitted, want 3", n)
	}

	def := mustBroadcast(t, env.db, 2, nil)
	if _, err := env.eng.Act(ctx, campaignd.ActionRequest{BroadcastID: def.ID, Action: campaignd.ActionSend, User: "test"}); err != nil {
		t.Fatal(err)
	}
	env.waitFinal(t, def, 30*time.Second)
	mu.Lock()
	defer mu.Unlock()
	for d, v := range got {
		if v != "000002000000000R" {
			t.Errorf("default broadcast, submit to %s: validity %q, want 48 h", d, v)
		}
	}
}
