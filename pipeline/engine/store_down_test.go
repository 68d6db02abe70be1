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
