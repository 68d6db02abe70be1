package smpp

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
)

// With OnReceiptAck the reader goes on at once: submits are answered while
// receipts wait for their store write, and no deliver_sm_resp leaves before
// ack. A failed ack asks for redelivery.
func TestReceiptAckedOnlyWhenDurable(t *testing.T) {
	sim := MustOpenSim(t, SimOptions{DeliveredPercent: 100})
	var mu sync.Mutex
	var pending []func(error)
	c := MustStartClient(t, sim, Options{OnReceiptAck: func(r campaignd.Receipt, ack func(error)) {
		mu.Lock()
		pending = append(pending, ack)
		mu.Unlock()
	}})
	npending := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(pending)
	}
	sim.SetReceiptsFirst(true) // each receipt reaches the reader before its submit_sm_resp
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := c.Submit(ctx, campaignd.OutMessage{Source: "Shop", Dest: "1", Text: "x"})
		cancel()
		if err != nil {
			t.Fatalf("submit %d while %d receipts await their write: %v", i, npending(), err)
		}
	}
	testenv.Wait(t, "20 receipts", func() bool { return npending() == 20 })
	if st := sim.Stats(); st.ReceiptsAcked != 0 || st.ReceiptsNacked != 0 {
		t.Fatalf("resps before any ack: %+v", st)
	}
	mu.Lock()
	acks := pending
	pending = nil
	mu.Unlock()
	for i, ack := range acks {
		if i < 15 {
			ack(nil)
			ack(nil) // a second call sends nothing
		} else {
			ack(errors.New("disk full"))
		}
	}
	testenv.Wait(t, "resps", func() bool { st := sim.Stats(); return st.ReceiptsAcked == 15 && st.ReceiptsNacked == 5 })
	// The five refused come again.
	testenv.Wait(t, "redelivery", func() bool { return npending() == 5 })
	mu.Lock()
	for _, ack := range pending {
		ack(nil)
	}
	mu.Unlock()
	testenv.Wait(t, "all acked", func() bool { return sim.Stats().ReceiptsAcked == 20 })
}

// recvRecorder is a Receiver that acknowledges every receipt at once.
type recvRecorder struct {
	mu       sync.Mutex
	receipts []campaignd.Receipt
	bound    []bool
}

func (r *recvRecorder) QueueReceipt(x campaignd.Receipt, ack func(error)) {
	r.mu.Lock()
	r.receipts = append(r.receipts, x)
	r.mu.Unlock()
	ack(nil)
}

func (r *recvRecorder) SMSCBound(b bool) {
	r.mu.Lock()
	r.bound = append(r.bound, b)
	r.mu.Unlock()
}

func (r *recvRecorder) counts() (receipts, bounds int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.receipts), len(r.bound)
}

// A client built before its receiver hands it receipts and bind changes once
// ReceiveWith has named it, before Start: no wait-for-ready in between.
func TestReceiveWithGetsReceiptsAndBinds(t *testing.T) {
	sim := MustOpenSim(t, SimOptions{DeliveredPercent: 100})
	c := New(Options{Addr: sim.Addr(), SystemID: "test"})
	rec := &recvRecorder{}
	c.ReceiveWith(rec)
	c.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	testenv.Wait(t, "bound", c.Bound)
	testenv.Wait(t, "OnBound(true) at the receiver", func() bool { _, b := rec.counts(); return b >= 1 })
	var ids []string
	for i := 0; i < 5; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got, err := c.Submit(ctx, campaignd.OutMessage{Source: "Shop", Dest: "1", Text: "x"})
		cancel()
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		ids = append(ids, got...)
	}
	testenv.Wait(t, "5 receipts at the receiver", func() bool { n, _ := rec.counts(); return n == 5 })
	testenv.Wait(t, "5 resps", func() bool { return sim.Stats().ReceiptsAcked == 5 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !rec.bound[0] {
		t.Errorf("first bind change %v, want true", rec.bound)
	}
	seen := map[string]bool{}
	for _, r := range rec.receipts {
		seen[r.MessageID] = true
		if r.Stat != StatDelivered {
			t.Errorf("receipt %+v, want DELIVRD", r)
		}
	}
	for _, id := range ids {
		if !seen[id] {
			t.Errorf("no receipt for submitted id %s (got %v)", id, seen)
		}
	}
}
