package store_test

import (
	"slices"
	"sync"
	"testing"

	"campaignd/store"
)

// A relayed request is queued, taken by exactly one of many concurrent
// takers, answered once; a cancelled request is never taken.
func TestActionQueue(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		first, err := db.QueueAction(store.Action{Kind: "act", Payload: []byte(`{"x":1}`), Node: "b"})
		if err != nil {
			t.Fatal(err)
		}
		second, err := db.QueueAction(store.Action{Kind: "admit", Node: "b"})
		if err != nil {
			t.Fatal(err)
		}
		if ids, err := db.PendingActions(0); err != nil || !slices.Equal(ids, []string{first, second}) {
			t.Fatalf("pending = %v, %v; want [%s %s] in queue order", ids, err, first, second)
		}
		if ids, _ := db.PendingActions(1); len(ids) != 1 {
			t.Fatalf("pending with limit 1 = %v", ids)
		}
		if r, err := db.ActionResult(first); err != nil || r != nil {
			t.Fatalf("result before any = %+v, %v; want none", r, err)
		}

		// Eight takers race for the first request: exactly one gets it.
		var mu sync.Mutex
		var got []*store.Action
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := db.TakeAction(first)
				if err != nil {
					t.Error(err)
					return
				}
				if a != nil {
					mu.Lock()
					got = append(got, a)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(got) != 1 {
			t.Fatalf("%d takers got the request; want exactly 1", len(got))
		}
		if a := got[0]; a.ID != first || a.Kind != "act" || string(a.Payload) != `{"x":1}` || a.Node != "b" || a.At.IsZero() {
			t.Fatalf("taken = %+v", a)
		}
		// Taken: the waiter can no longer cancel it.
		if was, err := db.CancelAction(first); err != nil || was {
			t.Fatalf("cancel after take = %v, %v; want false", was, err)
		}
		if err := db.FinishAction(store.ActionResult{ID: first, Payload: []byte("one"), Node: "a"}); err != nil {
			t.Fatal(err)
		}
		if err := db.FinishAction(store.ActionResult{ID: first, Code: "conflict", Message: "two"}); err != nil {
			t.Fatal(err)
		}
		if r, err := db.ActionResult(first); err != nil || r == nil || string(r.Payload) != "one" || r.Code != "" || r.Node != "a" {
			t.Fatalf("result = %+v, %v; want the first one written", r, err)
		}

		// Cancelled while pending: nobody takes it.
		if was, err := db.CancelAction(second); err != nil || !was {
			t.Fatalf("cancel pending = %v, %v; want true", was, err)
		}
		if a, err := db.TakeAction(second); err != nil || a != nil {
			t.Fatalf("take after cancel = %+v, %v; want nothing", a, err)
		}
		if ids, err := db.PendingActions(0); err != nil || len(ids) != 0 {
			t.Fatalf("pending at the end = %v, %v; want none", ids, err)
		}
	})
}
