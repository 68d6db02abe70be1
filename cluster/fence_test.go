package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"campaignd/internal/testenv"
)

// TestFence: a transaction fenced with the current epoch passes and holds
// off a takeover until it ends; a stale epoch is refused.
func TestFence(t *testing.T) {
	_, dsn := database(t)
	rec := &recorder{}
	a := startNode(t, dsn, "a", fast, rec)
	waitOneLeader(t, testenv.WaitTimeout, a)
	v, _ := a.e.Leader()
	epoch := v.Epoch

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	other, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)

	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := Fence(ctx, tx, epoch); err != nil {
		t.Fatalf("current epoch: %v", err)
	}
	if err := Fence(ctx, tx, epoch-1); !errors.Is(err, ErrFenced) {
		t.Errorf("stale epoch: %v, want ErrFenced", err)
	}
	// A takeover (any UPDATE of the row) must wait for the fenced
	// transaction.
	_, err = other.Exec(ctx, `SET lock_timeout = '200ms'; UPDATE cluster_leader SET epoch = epoch + 1 WHERE id = 1`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
		t.Errorf("takeover during a fenced transaction: %v, want lock_not_available", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	a.stop() // resigns: the lease expires
	tx, err = c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := Fence(ctx, tx, epoch); !errors.Is(err, ErrFenced) {
		t.Errorf("after resignation: %v, want ErrFenced", err)
	}
}
