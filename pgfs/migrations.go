package pgfs

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// lockMigrate is the pg_advisory_xact_lock key that serialises Open's schema
// work across nodes starting together ("pgfs" in ASCII). It must differ from
// every other advisory lock key of campaignd.
const lockMigrate = 0x70676673

// migrations are applied in order, each once, recorded in pgfs_migrations.
// Never edit one that has shipped: append a new one.
//
// The tree is stored by path, not by parent id: a node's row holds the path
// of its directory (dir) and its own name, so every lookup is one index probe
// on (dir, name) with no walk from the root, a listing is "dir = $1", and
// renaming a directory rewrites its descendants' dir prefix in the same
// transaction. Text is COLLATE "C" so listings sort by bytes (like Go's
// sort.Strings) and prefix ranges use the index.
//
// A file's bytes are in pgfs_chunk, chunkSize bytes a row, keyed by the
// node's id, never by its name: a rename touches one row, and replacing a
// file (O_TRUNC, a rename over it) gives the name a new id, so a writer or
// reader of the old one can never mix into it. Chunks are stored EXTERNAL
// (TOASTed out of line, not compressed): pglz costs more CPU than the disk it
// saves on CSV uploads at our rates.
var migrations = []string{
	1: `
CREATE TABLE pgfs_node (
	id     bigserial PRIMARY KEY,
	dir    text COLLATE "C" NOT NULL,
	name   text COLLATE "C" NOT NULL,
	is_dir boolean NOT NULL,
	mode   bigint NOT NULL,
	size   bigint NOT NULL DEFAULT 0,
	mtime  timestamptz NOT NULL DEFAULT clock_timestamp(),
	ctime  timestamptz NOT NULL DEFAULT clock_timestamp(),
	CONSTRAINT pgfs_node_path UNIQUE (dir, name)
);
CREATE TABLE pgfs_chunk (
	node_id bigint NOT NULL REFERENCES pgfs_node (id) ON DELETE CASCADE,
	seq     bigint NOT NULL,
	data    bytea NOT NULL,
	PRIMARY KEY (node_id, seq)
);
ALTER TABLE pgfs_chunk ALTER COLUMN data SET STORAGE EXTERNAL;
`,
}

// migrate brings the schema up to date in one transaction, under an advisory
// lock so that two nodes starting together apply each migration once.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(lockMigrate)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS pgfs_migrations (
			version    integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var have int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM pgfs_migrations`).Scan(&have); err != nil {
			return err
		}
		if have > len(migrations)-1 {
			return fmt.Errorf("database schema version %d is newer than this program's %d", have, len(migrations)-1)
		}
		for v := have + 1; v < len(migrations); v++ {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("migration %d: %w", v, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO pgfs_migrations (version) VALUES ($1)`, v); err != nil {
				return err
			}
		}
		return nil
	})
}
