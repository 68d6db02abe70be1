package engine_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
	"campaignd/pipeline/engine"
	"campaignd/store"
)

// downStore refuses every write of message changes while down is set, as
// a database that went away would.
type downStore struct {
	*store.DB
	down    atomic.Bool
	refused atomic.Int32
}

func (d *downStore) SaveChanges(cs []campaignd.Change, rs []campaignd.ReceiptIn, o campaignd.SaveOptions) (*campaignd.ChangeResult, error) {
	if d.down.Load() && len(cs) > 0 {
		d.refused.Add(1)
		return nil, errors.New("injected: the store is not answering")
	}
	return d.DB.SaveChanges(cs, rs, o)
}

// A submit whose record the store refuses is never submitted again (its
// outcome is known): the engine keeps it, stops submitting, writes it again
// until the store takes it, then goes on. So an outage of the store costs
// no duplicate, and at most the messages in flight are unrecorded if the
// node dies during it.
func TestEngineStoreDownNoResubmit(t *testing.T) {
	db := &downStore{DB: testenv.OpenStore(t)}
	h := newHarness(t, db.DB, nil, func(o *engine.Options) { o.Store = db }).start(t)
	b := mustBroadcast(t, db.DB, 400, nil)
	db.down.Store(true)
	h.mustAct(t, b.ID, campaignd.ActionSend, time.Time{})
	testenv.AdvanceUntil(t, h.clk, 300*time.Millisecond, "the store refusing records", func() bool { return db.refused.Load() > 2 })
	// Sending stops while the store refuses: the calls stay bounded by the
	// submits in flight when the first record failed.
	stalled := h.sender.Calls()
	for range 20 {
		h.clk.Advance(300 * time.Millisecond)
		time.Sleep(5 * time.Millisecond)
	}
	if got := h.sender.Calls(); got > stalled+4 { // window 4: those in flight
		t.Fatalf("%d submits while the store was down (%d when it first refused)", got, stalled)
	}
	testenv.AdvanceUntil(t, h.clk, 300*time.Millisecond, "the wait reason "+engine.WaitStore, func() bool {
		return h.broadcast(t, b.ID).Wait == engine.WaitStore
	})
	db.down.Store(false)
	testenv.AdvanceUntil(t, h.clk, 300*time.Millisecond, "the broadcast completing", func() bool {
		return h.broadcast(t, b.ID).Status == campaignd.StatusCompleted
	})
	h.checkExactlyOnce(t, 400)
}

// listDownStore fails the suppression check while down is set, as a store
// that cannot be read would.
type listDownStore struct {
	*store.DB
	down   atomic.Bool
	checks atomic.Int32
}

func (d *listDownStore) IsSuppressed(number string) (bool, error) {
	if d.down.Load() {
		d.checks.Add(1)
		return false, errors.New("injected: the store is not answering")
	}
	return d.DB.IsSuppressed(number)
}

// A suppression check that fails never lets a message through: it waits
// until the list can be read, and a number that opted out is then skipped.
func TestEngineSuppressionCheckFailsNoSubmit(t *testing.T) {
	db := &listDownStore{DB: testenv.OpenStore(t)}
	h := newHarness(t, db.DB, nil, func(o *engine.Options) { o.Store = db }).start(t)
	b := mustBroadcast(t, db.DB, 50, nil)
	if _, err := db.DB.Suppress(campaignd.Suppression{Number: dest(7), Reason: campaignd.SuppressOperator, By: "test"}); err != nil {
		t.Fatal(err)
	}
	db.down.Store(true)
	h.mustAct(t, b.ID, campaignd.ActionSend, time.Time{})
	testenv.AdvanceUntil(t, h.clk, 50*time.Millisecond, "failed checks", func() bool { return db.checks.Load() > 10 })
	if n := h.sender.Calls(); n != 0 {
		t.Fatalf("%d submits while the suppression list could not be read", n)
	}
	db.down.Store(false)
	testenv.AdvanceUntil(t, h.clk, 50*time.Millisecond, "the broadcast completing", func() bool {
		return h.broadcast(t, b.ID).Status == campaignd.StatusCompleted
	})
	if n := h.sender.Count(dest(7)); n != 0 {
		t.Fatalf("the opted-out number got %d submits", n)
	}
	if got := h.broadcast(t, b.ID).Counts; got.Suppressed != 1 || got.Submitted+got.Delivered != 49 {
		t.Fatalf("counts %+v: want 1 suppressed, 49 sent", got)
	}
}
