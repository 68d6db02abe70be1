package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ErrFenced is returned by Fence when the term it checks no longer holds the
// lease: a newer term exists, or the lease expired.
var ErrFenced = errors.New("cluster: fenced: this term no longer leads")

// Querier is what Fence needs: a pgx.Tx (or a *pgx.Conn inside BEGIN).
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Fence checks, inside the caller's transaction, that the term with epoch
// still holds an unexpired lease, and share-locks the leader row so that no
// other node can take the lease until the transaction ends. A write of the
// leader's made in the same transaction therefore commits only while its
// term holds the lease: the database-side guard behind the leader's own
// step-down. Keep such transactions short, since the lock also holds up the
// leader's renewals; call Fence early, since it blocks while a takeover is
// being committed.
func Fence(ctx context.Context, tx Querier, epoch int64) error {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT epoch = $1 AND expires_at > clock_timestamp()
		FROM cluster_leader WHERE id = 1 FOR SHARE`, epoch).Scan(&ok)
	if err != nil {
		return fmt.Errorf("cluster: fence: %w", err)
	}
	if !ok {
		return ErrFenced
	}
	return nil
}
