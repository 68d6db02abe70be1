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
