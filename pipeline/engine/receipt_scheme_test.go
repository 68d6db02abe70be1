package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
	"campaignd/pipeline/engine"
	"campaignd/smpp"
	"campaignd/store"
)

// Every id scheme of the simulator, thousands of messages, every receipt
// held until all were submitted and then sent in random order: each message
// settles with its own status (the simulator's status depends on the
// destination, so a misfiled receipt shows) and none is left unmatched.
func TestEverySchemeSettlesEachMessageWithItsOwnStatus(t *testing.T) {
	n := 5000
	if testing.Short() {
		n = 1500
	}
	type run struct {
		scheme, format string
		start          uint64
	}
	runs := []run{
		{smpp.SimIDDecimal, campaignd.IDFormatAuto, 1},
		{smpp.SimIDHex, campaignd.IDFormatAuto, 1}, // 3E8 … 1000 … 1388: hex ids that are also decimal ones
		{smpp.SimIDHexDecimal, campaignd.IDFormatAuto, 1},
		{smpp.SimIDDecimalHex, campaignd.IDFormatAuto, 1},
		{smpp.SimIDPadded, campaignd.IDFormatAuto, 1},
		{smpp.SimIDUUID, campaignd.IDFormatAuto, 1},
		{smpp.SimIDHex, campaignd.IDFormatExact, 1},
		{smpp.SimIDHexDecimal, campaignd.IDFormatSubmitHexReceiptDecimal, 0x3E0},
		{smpp.SimIDDecimalHex, campaignd.IDFormatSubmitDecimalReceiptHex, 990},
	}
	for _, r := range runs {
		t.Run(r.scheme+"/"+r.format, func(t *testing.T) {
			env := startSMPP(t, smppConfig{
				sim:    smpp.SimOptions{IDScheme: r.scheme, IDStart: r.start, ReceiptBatch: n, Decide: smpp.StatByDest},
				client: smpp.Options{Window: 100},
				engine: func(o *engine.Options) { o.MessageIDFormat = r.format; o.BatchSize = 512 },
			})
			b := env.send(t, n, "")
			env.waitFinal(t, b, 120*time.Second)
			err := env.db.Messages(b.ID, 0, func(m *campaignd.Message) error {
				if want := smpp.StatByDest(m.Recipient, 1, ""); string(m.State) != want {
					return fmt.Errorf("message %d to %s (id %v): %s, want %s", m.Index, m.Recipient, m.SMSCIDs, m.State, want)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if u := env.events.Receipts(engine.ReceiptUnmatched); u != 0 {
				t.Fatalf("%d unmatched receipts", u)
			}
			if d := env.events.Receipts(engine.ReceiptDuplicate); d != 0 {
				t.Fatalf("%d duplicate receipts", d)
			}
			testenv.Eventually(t, 60*time.Second, "every receipt acknowledged", func() bool {
				return env.sim.Stats().ReceiptsAcked == int64(n)
			})
			if sc, _ := env.db.IDScheme(); r.format == campaignd.IDFormatAuto && r.scheme != smpp.SimIDUUID && sc == "" {
				t.Fatalf("auto learned nothing")
			}
		})
	}
}

// gatedStore holds back (or fails) the writes that carry receipts.
type gatedStore struct {
	*store.DB
	hold    atomic.Bool
	fail    atomic.Int32 // fail this many writes with receipts
	waiting atomic.Int32 // writes with receipts held now
	gate    chan struct{}
}

func (g *gatedStore) SaveChanges(cs []campaignd.Change, rs []campaignd.ReceiptIn, o campaignd.SaveOptions) (*campaignd.ChangeResult, error) {
	if len(rs) > 0 {
		if g.fail.Load() > 0 && g.fail.Add(-1) >= 0 {
			return nil, errors.New("injected write failure")
		}
		if g.hold.Load() {
			g.waiting.Add(1)
			<-g.gate
			g.waiting.Add(-1)
		}
	}
	return g.DB.SaveChanges(cs, rs, o)
}

// A slow receipt write holds up neither the SMPP reader (submit responses
// go on) nor anything but that receipt's own deliver_sm_resp, which leaves
// only after the commit.
func TestSlowReceiptWriteDelaysOnlyItsAck(t *testing.T) {
	g := &gatedStore{gate: make(chan struct{})}
	g.hold.Store(true)
	var once sync.Once
	release := func() { once.Do(func() { close(g.gate) }) }
	t.Cleanup(release)
	env := startSMPP(t, smppConfig{
		sim:   smpp.SimOptions{DeliveredPercent: 100},
		store: func(db *store.DB) engine.Store { g.DB = db; return g },
	})
	b := env.send(t, 1, "")
	testenv.Eventually(t, 20*time.Second, "the receipt's write", func() bool { return g.waiting.Load() == 1 })
	// The writer is stuck on the receipt; the SMPP side still answers submits.
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := env.client.Submit(ctx, campaignd.OutMessage{Source: "28776", Dest: "5255100000", Text: "x"})
		cancel()
		if err != nil {
			t.Fatalf("submit %d while a receipt write is slow: %v", i, err)
		}
	}
	if st := env.sim.Stats(); st.ReceiptsAcked != 0 || st.ReceiptsNacked != 0 {
		t.Fatalf("deliver_sm_resp before the commit: %+v", st)
	}
	release()
	testenv.Eventually(t, 20*time.Second, "the ack after the commit", func() bool { return env.sim.Stats().ReceiptsAcked >= 1 })
	g.hold.Store(false)
	env.waitFinal(t, b, 30*time.Second)
}

// A receipt whose write fails is answered with an error status, delivered
// again by the SMSC and then stored.
func TestFailedReceiptWriteAsksForRedelivery(t *testing.T) {
	g := &gatedStore{gate: make(chan struct{})}
	g.fail.Store(5) // the writer's five attempts
	env := startSMPP(t, smppConfig{
		sim:   smpp.SimOptions{DeliveredPercent: 100},
		store: func(db *store.DB) engine.Store { g.DB = db; return g },
	})
	b := env.send(t, 1, "")
	got := env.waitFinal(t, b, 30*time.Second)
	if got.Counts.Delivered != 1 {
		t.Fatalf("counts %+v", got.Counts)
	}
	testenv.Eventually(t, 20*time.Second, "the redelivered receipt acknowledged", func() bool {
		return env.sim.Stats().ReceiptsAcked == 1
	})
	if st := env.sim.Stats(); st.ReceiptsNacked < 1 {
		t.Fatalf("sim stats %+v", st)
	}
}

// collEvents counts id collisions on top of recEvents.
type collEvents struct {
	*recEvents
	n atomic.Int32
}

func (e *collEvents) ReceiptIDCollision() { e.n.Add(1) }

// An SMSC that gives one id to several messages awaiting receipts: each
// collision is counted, and a receipt for that id settles none of them.
func TestIDCollisionCountedNeverGuessed(t *testing.T) {
	var ce *collEvents
	s := &fakeSender{}
	s.SubmitFn = func(ctx context.Context, m campaignd.OutMessage) ([]string, error) { return []string{"0077"}, nil }
	h := newHarness(t, nil, s, func(o *engine.Options) {
		ce = &collEvents{recEvents: o.Events.(*recEvents)}
		o.Events, o.MessageIDFormat = ce, campaignd.IDFormatExact
	}).start(t)
	b := mustBroadcast(t, h.db, 3, nil)
	h.mustAct(t, b.ID, campaignd.ActionSend, time.Time{})
	h.waitStatus(t, b.ID, campaignd.StatusCompleted)
	if n := ce.n.Load(); n != 3 { // the second message collides with the first, the third with both
		t.Fatalf("%d collisions counted", n)
	}
	h.receipt(t, "77", "DELIVRD")
	if got := h.broadcast(t, b.ID); got.Counts.Submitted != 3 {
		t.Fatalf("counts = %+v", got.Counts)
	}
	if h.events.Receipts(engine.ReceiptUnmatched) != 1 {
		t.Fatalf("receipt events = %v", h.events.receipts)
	}
}
