package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The PostgreSQL engine keeps every key in one table, kv(k, v, expires_at)
// (migrations/pg/0001_kv.sql). Update runs in a SERIALIZABLE transaction:
// Badger's transactions conflict when a key they read was written by a
// concurrent commit, which forbids write skew; REPEATABLE READ would allow
// it (two transactions each reading what the other writes), so only
// SERIALIZABLE gives the store's logic the guarantees it was written for.
// View runs in REPEATABLE READ READ ONLY: a consistent snapshot, which is
// what Badger's View gives (SERIALIZABLE would add predicate locks and could
// fail a reader, for nothing the store relies on).
//
// A transaction buffers its writes and sends them in one round trip (an
// unnest upsert and a DELETE ... = ANY) before a Scan and at commit; a
// transaction that only writes costs one round trip in all (BEGIN, writes
// and COMMIT pipelined). A Batch sends pieces of a few thousand keys through
// COPY (kv_pg_batch.go). Expired keys are invisible at once and deleted by
// Maintain. Commits are durable when they return as long as the server runs
// with synchronous_commit = on (its default), so Sync has nothing to do.

//go:embed migrations/pg/*.sql
var pgMigrations embed.FS

// pgMigrationLock is the key of the transaction-level advisory lock that
// serialises applying migrations, so nodes starting together take turns.
// ("campmigr" in ASCII.)
const pgMigrationLock int64 = 0x63616d706d696772

// PGOptions configure OpenPG.
type PGOptions struct {
	Logger *slog.Logger
	// MaxConns bounds the connection pool (default 10; a pool_max_conns in
	// the DSN wins when this is 0).
	MaxConns int32
	// QueryTimeout bounds each round trip to the server (default 30 s).
	QueryTimeout time.Duration
	// MaintainEvery is how often expired keys are deleted (default 1 min;
	// negative: never, Maintain is then only run when called).
	MaintainEvery time.Duration
	// MaxRetries bounds how often Update runs fn again after a serialization
	// failure or deadlock before returning ErrConflict (default 20).
	MaxRetries int
}

// pgKV is the PostgreSQL KV.
type pgKV struct {
	pool    *pgxpool.Pool
	o       PGOptions
	logger  *slog.Logger
	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closing sync.Once
}

var _ KV = (*pgKV)(nil)

// OpenPG connects to the PostgreSQL database at dsn, applies the embedded
// migrations it lacks and returns the KV. It starts a goroutine that deletes
// expired keys every o.MaintainEvery; Close stops it.
func OpenPG(ctx context.Context, dsn string, o PGOptions) (KV, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 30 * time.Second
	}
	if o.MaintainEvery == 0 {
		o.MaintainEvery = time.Minute
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = 20
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: postgres dsn: %w", err)
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	} else if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = 10
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "campaignd"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	if err := migratePG(ctx, pool, o.Logger); err != nil {
		pool.Close()
		return nil, err
	}
	kctx, cancel := context.WithCancel(context.Background())
	kv := &pgKV{pool: pool, o: o, logger: o.Logger, ctx: kctx, cancel: cancel}
	if o.MaintainEvery > 0 {
		kv.wg.Add(1)
		go kv.maintainLoop()
	}
	return kv, nil
}

// pgMigration is one embedded SQL file, 0001_name.sql.
type pgMigration struct {
	version int
	name    string
	sql     string
}

func loadPGMigrations() ([]pgMigration, error) {
	files, err := fs.Glob(pgMigrations, "migrations/pg/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []pgMigration
	for _, f := range files {
		base := path.Base(f)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("store: migration %s: name is not NNNN_name.sql", base)
		}
		b, err := pgMigrations.ReadFile(f)
		if err != nil {
			return nil, err
		}
		ms = append(ms, pgMigration{version: v, name: base, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("store: migrations %s and %s have the same version", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

// migratePG applies each migration the database lacks, in order, each in its
// own transaction holding the advisory lock: a node that waited for the lock
// finds the version recorded and skips it.
func migratePG(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	ms, err := loadPGMigrations()
	if err != nil {
		return err
	}
	if len(ms) == 0 {
		return errors.New("store: no embedded migrations")
	}
	for _, m := range ms {
		applied, err := applyPGMigration(ctx, pool, m)
		if err != nil {
			return fmt.Errorf("store: migration %s: %w", m.name, err)
		}
		if applied {
			logger.Info("applied database migration", slog.String("migration", m.name))
		}
	}
	// A node of a newer release may have migrated the database further (a
	// rolling upgrade): go on, as migrations only add, but say so.
	var newest int
	if err := pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&newest); err != nil {
		return fmt.Errorf("store: schema version: %w", err)
	}
	if known := ms[len(ms)-1].version; newest > known {
		logger.Warn("the database schema is newer than this program's",
			slog.Int("schema_version", newest), slog.Int("known_version", known))
	}
	return nil
}

func applyPGMigration(ctx context.Context, pool *pgxpool.Pool, m pgMigration) (bool, error) {
	applied := false
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", pgMigrationLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    int         PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var done bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)", m.version).Scan(&done); err != nil {
			return err
		}
		if done {
			return nil
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", m.version); err != nil {
			return err
		}
		applied = true
		return nil
	})
	return applied, err
}

// Update runs fn in a SERIALIZABLE transaction, again after a serialization
// failure or deadlock (with a short jittered backoff), and again after a
// connection that broke before the commit was sent (the server rolled it
// back). A connection that breaks during the commit leaves its outcome
// unknown: that error is returned.
func (kv *pgKV) Update(fn func(Txn) error) error {
	conflicts, broken := 0, 0
	for {
		t := kv.newTxn(true)
		err := t.run(fn)
		switch {
		case err == nil:
			return nil
		case isPGConflict(err):
			conflicts++
			if conflicts > kv.o.MaxRetries {
				return fmt.Errorf("%w (%d attempts): %v", ErrConflict, conflicts, err)
			}
			if err := kv.backoff(conflicts); err != nil {
				return err
			}
		case t.retryableBreak(err) && broken < 3:
			broken++
			kv.pool.Reset() // the other idle connections died with this one
			if err := kv.backoff(broken); err != nil {
				return err
			}
		default:
			return pgError(err)
		}
	}
}

// View runs fn in a REPEATABLE READ READ ONLY transaction, again if its
// connection broke (a read-only transaction is always safe to repeat).
func (kv *pgKV) View(fn func(Txn) error) error {
	for broken := 0; ; broken++ {
		t := kv.newTxn(false)
		err := t.run(fn)
		if err != nil && broken < 3 && t.broke(err) {
			kv.pool.Reset()
			if err := kv.backoff(broken + 1); err != nil {
				return err
			}
			continue
		}
		return pgError(err)
	}
}

// Get runs one statement outside a transaction (its own snapshot): no
// BEGIN and no COMMIT, one round trip.
func (kv *pgKV) Get(key []byte) ([]byte, error) {
	for broken := 0; ; broken++ {
		t := kv.newTxn(false)
		t.begun = true // nothing to begin: the statement commits by itself
		v, err := t.Get(key)
		t.release()
		if err != nil && broken < 3 && t.broke(err) {
			kv.pool.Reset()
			if err := kv.backoff(broken + 1); err != nil {
				return nil, err
			}
			continue
		}
		return v, pgError(err)
	}
}

// backoff sleeps a jittered 1, 2, 4 … ms up to 100 ms, or returns at Close.
func (kv *pgKV) backoff(attempt int) error {
	d := time.Millisecond << min(attempt-1, 7)
	d = min(d, 100*time.Millisecond)
	d = d/2 + rand.N(d/2+1)
	select {
	case <-time.After(d):
		return nil
	case <-kv.ctx.Done():
		return errors.New("store: closed")
	}
}

// isPGConflict reports a serialization failure or a deadlock: the
// transaction lost to a concurrent one and may simply run again.
func isPGConflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// pgError maps the server's "too large" errors to ErrTooBig.
func pgError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "54000" || pe.Code == "54001") {
		return fmt.Errorf("%w: %v", ErrTooBig, err)
	}
	return err
}

// NewBatch starts a batch of blind writes; see kv_pg_batch.go.
func (kv *pgKV) NewBatch() Batch { return newPGBatch(kv) }

// Sync does nothing: a commit has returned only once it is durable
// (synchronous_commit = on, the server's default).
func (kv *pgKV) Sync() error { return nil }

// Ping checks that the server answers within 5 seconds.
func (kv *pgKV) Ping() error {
	ctx, cancel := context.WithTimeout(kv.ctx, 5*time.Second)
	defer cancel()
	if _, err := kv.pool.Exec(ctx, "SELECT 1"); err != nil {
		return fmt.Errorf("store: postgres ping: %w", err)
	}
	return nil
}

// Close stops the maintenance goroutine and closes the pool.
func (kv *pgKV) Close() error {
	kv.closing.Do(func() {
		kv.cancel()
		kv.wg.Wait()
		kv.pool.Close()
	})
	return nil
}

// pgExpireBatch is how many expired keys one statement of Maintain deletes,
// so that a large backlog is cleared in short transactions.
const pgExpireBatch = 5000

// Maintain deletes expired keys (already invisible to Get and Scan). Several
// nodes may run it at once: SKIP LOCKED keeps them out of each other's way.
func (kv *pgKV) Maintain() {
	for kv.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(kv.ctx, kv.o.QueryTimeout)
		ct, err := kv.pool.Exec(ctx, `DELETE FROM kv WHERE k IN (
			SELECT k FROM kv WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)`, pgExpireBatch)
		cancel()
		if err != nil {
			if kv.ctx.Err() == nil {
				kv.logger.Warn("deleting expired keys", slog.Any("error", err))
			}
			return
		}
		if ct.RowsAffected() < pgExpireBatch {
			return
		}
	}
}

func (kv *pgKV) maintainLoop() {
	defer kv.wg.Done()
	t := time.NewTicker(kv.o.MaintainEvery)
	defer t.Stop()
	for {
		select {
		case <-kv.ctx.Done():
			return
		case <-t.C:
			kv.Maintain()
		}
	}
}
