package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"campaignd/internal/testenv"
)

func startNotifier(t *testing.T, dsn, name string) *Notifier {
	t.Helper()
	n, err := NewNotifier(dsn, NotifierOptions{
		Node:   name,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
		Check:  2 * time.Second, Retry: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; n.Close() })
	return n
}

// recv returns the next value on ch, failing after d.
func recv(t *testing.T, ch <-chan string, d time.Duration, what string) string {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
		return v
	case <-time.After(d):
		t.Fatalf("%s: nothing within %v", what, d)
		return ""
	}
}

// recvPayload skips Rescans and returns the next payload.
func recvPayload(t *testing.T, ch <-chan string, what string) string {
	t.Helper()
	for {
		if v := recv(t, ch, testenv.WaitTimeout, what); v != Rescan {
			return v
		}
	}
}

// TestNotifier: a notification reaches every listener on every node; one
// sent in a rolled-back transaction reaches none; after the database
// restarts every listener gets Rescan and then notifications again.
func TestNotifier(t *testing.T) {
	p, dsn := database(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ns []*Notifier
	var chs []<-chan string
	for _, name := range []string{"a", "b", "c"} {
		n := startNotifier(t, dsn, name)
		ns = append(ns, n)
		chs = append(chs, n.Listen(ctx, "campaignd_wake"))
	}
	other := ns[1].Listen(ctx, "other")
	for i, ch := range chs {
		if v := recv(t, ch, testenv.WaitTimeout, "first value"); v != Rescan {
			t.Fatalf("listener %d: first value %q, want Rescan", i, v)
		}
	}
	if v := recv(t, other, testenv.WaitTimeout, "first value"); v != Rescan {
		t.Fatalf("first value %q, want Rescan", v)
	}

	if err := ns[0].Notify(ctx, "campaignd_wake", "b1"); err != nil {
		t.Fatal(err)
	}
	for i, ch := range chs {
		if v := recvPayload(t, ch, "b1"); v != "b1" {
			t.Errorf("listener %d got %q, want b1", i, v)
		}
	}

	// In a transaction: nothing if it rolls back, the payload once it commits.
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, commit := range []bool{false, true} {
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := Notify(ctx, tx, "campaignd_wake", fmt.Sprintf("tx-commit-%v", commit)); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit(ctx)
		} else {
			err = tx.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, ch := range chs {
		if v := recvPayload(t, ch, "tx"); v != "tx-commit-true" {
			t.Errorf("listener %d got %q, want tx-commit-true", i, v)
		}
	}

	// The database restarts: notifications sent meanwhile are lost, so every
	// listener is told to re-scan, then hears new ones.
	p.Stop()
	p.Start()
	for i, ch := range chs {
		if v := recv(t, ch, 30*time.Second, "Rescan after restart"); v != Rescan {
			t.Errorf("listener %d: after restart got %q, want Rescan", i, v)
		}
	}
	if v := recv(t, other, 30*time.Second, "Rescan after restart"); v != Rescan {
		t.Errorf("after restart got %q, want Rescan", v)
	}
	if err := ns[2].Notify(ctx, "campaignd_wake", "after"); err != nil {
		t.Fatal(err)
	}
	for i, ch := range chs {
		if v := recvPayload(t, ch, "after restart"); v != "after" {
			t.Errorf("listener %d got %q, want after", i, v)
		}
	}
	if err := ns[2].Notify(ctx, "other", "o1"); err != nil {
		t.Fatal(err)
	}
	if v := recvPayload(t, other, "other channel"); v != "o1" {
		t.Errorf("other channel got %q, want o1", v)
	}
}

// TestNotifierSlowReceiver: a receiver that does not read holds up nobody,
// and when too much piles up it is told to re-scan instead; a cancelled
// Listen closes its channel.
func TestNotifierSlowReceiver(t *testing.T) {
	_, dsn := database(t)
	n := startNotifier(t, dsn, "a")
	n.maxPending = 4
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow := n.Listen(ctx, "w")
	fast := n.Listen(ctx, "w")
	for _, ch := range []<-chan string{slow, fast} {
		if v := recv(t, ch, testenv.WaitTimeout, "first value"); v != Rescan {
			t.Fatalf("first value %q, want Rescan", v)
		}
	}
	const sent = 20
	for i := range sent {
		if err := n.Notify(ctx, "w", fmt.Sprint("p", i)); err != nil {
			t.Fatal(err)
		}
		if v := recv(t, fast, testenv.WaitTimeout, "fast receiver"); v != fmt.Sprint("p", i) {
			t.Fatalf("fast receiver got %q, want p%d", v, i)
		}
	}
	if err := n.Notify(ctx, "w", "end"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		v := recv(t, slow, testenv.WaitTimeout, "slow receiver")
		if v == "end" {
			break
		}
		got = append(got, v)
	}
	rescan := false
	for _, v := range got {
		rescan = rescan || v == Rescan
	}
	if !rescan || len(got) >= sent {
		t.Errorf("slow receiver got %q: want fewer than %d values including a Rescan", got, sent)
	}

	lctx, lcancel := context.WithCancel(ctx)
	ch := n.Listen(lctx, "w")
	lcancel()
	testenv.Wait(t, "a cancelled Listen closes its channel", func() bool {
		select {
		case _, ok := <-ch:
			return !ok
		default:
			return false
		}
	})
}

// TestNotifierPartition: the listening connection's network goes silent
// (nothing is closed): the notifier notices by itself within about two
// Check periods and reconnects, and once the network heals the receiver gets
// Rescan and then notifications again.
func TestNotifierPartition(t *testing.T) {
	p, dsn := database(t)
	px := newProxy(t, fmt.Sprintf("127.0.0.1:%d", p.Port))
	n := startNotifier(t, px.dsn(t, dsn), "a")
	direct := startNotifier(t, dsn, "b")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := n.Listen(ctx, "w")
	if v := recv(t, ch, testenv.WaitTimeout, "first value"); v != Rescan {
		t.Fatalf("first value %q, want Rescan", v)
	}
	testenv.Eventually(t, 5*n.o.Check, "three health checks of the idle connection", func() bool {
		return n.pings.Load() >= 3
	})
	before := px.connections()
	if before != 1 {
		t.Errorf("%d connections through the proxy before the partition, want 1", before)
	}
	t0 := time.Now()
	px.partition(true)
	testenv.Eventually(t, 3*n.o.Check+5*time.Second, "a reconnect attempt during the partition", func() bool {
		return px.connections() > before
	})
	t.Logf("dead listening connection noticed after %v (Check %v)", time.Since(t0), n.o.Check)
	if err := direct.Notify(ctx, "w", "lost"); err != nil { // sent while cut off: lost
		t.Fatal(err)
	}
	px.partition(false)
	if v := recv(t, ch, 30*time.Second, "Rescan after the partition"); v != Rescan {
		t.Errorf("after the partition got %q, want Rescan", v)
	}
	if err := direct.Notify(ctx, "w", "after"); err != nil {
		t.Fatal(err)
	}
	if v := recvPayload(t, ch, "after the partition"); v != "after" {
		t.Errorf("got %q, want after", v)
	}
}
