package cluster

import (
	"context"
	"fmt"
)

// Schema creates the package's two tables; it is idempotent. The leader row
// exists from the start with an expired lease, so taking the lead is always
// an UPDATE of one row.
const Schema = `
CREATE TABLE IF NOT EXISTS cluster_leader (
	id         integer PRIMARY KEY CHECK (id = 1),
	node       text        NOT NULL,
	instance   text        NOT NULL,
	addr       text        NOT NULL,
	epoch      bigint      NOT NULL,
	since      timestamptz NOT NULL,
	expires_at timestamptz NOT NULL
);
INSERT INTO cluster_leader (id, node, instance, addr, epoch, since, expires_at)
	VALUES (1, '', '', '', 0, 'epoch', 'epoch') ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS cluster_node (
	node      text        PRIMARY KEY,
	instance  text        NOT NULL,
	addr      text        NOT NULL,
	started   timestamptz NOT NULL,
	last_seen timestamptz NOT NULL
);
`

// migrateLock is the transaction advisory lock key that serialises Migrate
// between nodes starting together (concurrent CREATE TABLE IF NOT EXISTS can
// fail on the catalog's unique index).
const migrateLock = 0x63_6c_75_73_74_65_72 // "cluster"

// Migrate applies Schema in one transaction under an advisory lock. The
// Elector calls it on its first connection; the store's migrations may run
// Schema themselves instead.
func Migrate(ctx context.Context, db Execer) error {
	sql := fmt.Sprintf("BEGIN; SELECT pg_advisory_xact_lock(%d); %s COMMIT;", migrateLock, Schema)
	if _, err := db.Exec(ctx, sql); err != nil {
		return fmt.Errorf("cluster: migrate: %w", err)
	}
	return nil
}
