package main

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"campaignd"
	"campaignd/cluster"
	"campaignd/internal/testenv"
	"campaignd/store"
)

// relayNode is a follower's relay on an in-memory store, with no leader
// and a notifier whose database does not answer (so only the store's
// queue and the waiter's polling are at work).
func relayNode(t *testing.T) (*clusterNode, *store.DB) {
	t.Helper()
	db, err := store.Open(store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	n, err := cluster.NewNotifier("postgres://nobody@127.0.0.1:1/none?connect_timeout=1", cluster.NotifierOptions{Node: "b"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	m := &Main{DB: db, Logger: slog.New(slog.DiscardHandler), ctx: context.Background()}
	c := &clusterNode{m: m, name: "b", notifier: n, log: m.Logger, timeout: 400 * time.Millisecond, grace: 400 * time.Millisecond,
		waiters: map[string]chan struct{}{}}
	m.cluster = c
	return c, db
}

// No leader takes the request: the operator gets a clear error within the
// bound, and the request is withdrawn so it never runs later.
func TestClusterRelayTimeout(t *testing.T) {
	c, db := relayNode(t)
	start := time.Now()
	_, err := c.act(context.Background(), campaignd.ActionRequest{BroadcastID: 1, Action: campaignd.ActionSend})
	took := time.Since(start)
	if !errors.Is(err, errNoAnswer) || campaignd.ErrorMessage(err) == "" {
		t.Fatalf("act with no leader = %v; want %v", err, errNoAnswer)
	}
	if took < c.timeout || took > c.timeout+3*time.Second {
		t.Fatalf("gave up after %s; want about %s", took, c.timeout)
	}
	if ids, err := db.PendingActions(0); err != nil || len(ids) != 0 {
		t.Fatalf("pending after the timeout = %v, %v; want the request withdrawn", ids, err)
	}
}

// A leader (played by the test through the store) takes the request: its
// result, or its error, is what the operator gets; taken but never
// answered, the operator is told to check before trying again.
func TestClusterRelayAnswers(t *testing.T) {
	c, db := relayNode(t)
	c.timeout = 5 * time.Second
	leader := func(answer func(a *store.Action) store.ActionResult) {
		go func() {
			for {
				ids, _ := db.PendingActions(0)
				if len(ids) > 0 {
					a, _ := db.TakeAction(ids[0])
					if a != nil && answer != nil {
						r := answer(a)
						r.ID = a.ID
						db.FinishAction(r)
					}
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	leader(func(a *store.Action) store.ActionResult {
		if a.Kind != kindAct || a.Node != "b" {
			t.Errorf("queued %+v", a)
		}
		return store.ActionResult{Payload: []byte(`{"id":7,"status":"sending"}`)}
	})
	b, err := c.act(context.Background(), campaignd.ActionRequest{BroadcastID: 7, Action: campaignd.ActionSend})
	if err != nil || b.ID != 7 || b.Status != campaignd.StatusSending {
		t.Fatalf("relayed act = %+v, %v", b, err)
	}

	leader(func(*store.Action) store.ActionResult {
		return store.ActionResult{Code: campaignd.ECONFLICT, Message: "Not while completed."}
	})
	if _, err := c.act(context.Background(), campaignd.ActionRequest{BroadcastID: 7, Action: campaignd.ActionPause}); campaignd.ErrorCode(err) != campaignd.ECONFLICT || campaignd.ErrorMessage(err) != "Not while completed." {
		t.Fatalf("relayed refusal = %v; want the leader's conflict", err)
	}

	c.timeout = 300 * time.Millisecond
	leader(nil) // takes it, never answers
	start := time.Now()
	if _, err := c.act(context.Background(), campaignd.ActionRequest{BroadcastID: 7, Action: campaignd.ActionPause}); !errors.Is(err, errLateAnswer) {
		t.Fatalf("taken, unanswered = %v; want %v", err, errLateAnswer)
	}
	if took := time.Since(start); took < c.timeout+c.grace {
		t.Fatalf("gave up after %s; want the timeout and the grace (%s)", took, c.timeout+c.grace)
	}
	testenv.Eventually(t, time.Second, "queue empty", func() bool { ids, _ := db.PendingActions(0); return len(ids) == 0 })
}
