package pgfs_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"syscall"
	"testing"

	"campaignd/internal/testenv"
	"campaignd/pgfs"

	"github.com/jackc/pgx/v5/pgxpool"
)

// mustOpen gives a fresh database on p, its pool (closed by cleanup) and the
// store on it.
func mustOpen(tb testing.TB, p *testenv.Postgres) (*pgfs.DB, *pgxpool.Pool) {
	tb.Helper()
	dsn := p.NewDatabase(tb)
	pool := mustPool(tb, dsn)
	db, err := pgfs.Open(context.Background(), pool, pgfs.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return db, pool
}

func mustPool(tb testing.TB, dsn string) *pgxpool.Pool {
	tb.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// class names the kind of an error, the way a caller tells them apart.
func class(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, syscall.ENOTEMPTY): // before ErrExist, which it also Is
		return "ENOTEMPTY"
	case errors.Is(err, fs.ErrNotExist):
		return "ENOENT"
	case errors.Is(err, fs.ErrExist):
		return "EEXIST"
	case errors.Is(err, syscall.ENOTDIR):
		return "ENOTDIR"
	case errors.Is(err, syscall.EISDIR):
		return "EISDIR"
	case errors.Is(err, fs.ErrInvalid), errors.Is(err, syscall.EINVAL):
		return "EINVAL"
	case errors.Is(err, fs.ErrPermission):
		return "EPERM"
	case errors.Is(err, fs.ErrClosed):
		return "ECLOSED"
	case errors.Is(err, syscall.EBADF):
		return "EBADF"
	}
	return "error: " + err.Error()
}

// pattern is a deterministic stream of n bytes (a counter's SHA-256s), so a
// test can write a large file without holding it and check it on reading.
type pattern struct {
	n, off int64
	block  [32]byte
}

func newPattern(n int64) *pattern { return &pattern{n: n} }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.off)]
	for i := range b {
		if (p.off+int64(i))%32 == 0 || i == 0 {
			var c [8]byte
			v := (p.off + int64(i)) / 32
			for j := range c {
				c[j] = byte(v >> (8 * j))
			}
			p.block = sha256.Sum256(c[:])
		}
		b[i] = p.block[(p.off+int64(i))%32]
	}
	p.off += int64(len(b))
	return len(b), nil
}

// sum is the SHA-256 of r.
func sum(tb testing.TB, r io.Reader) [32]byte {
	tb.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		tb.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// TestOpenRace: nodes starting together each run Open on an empty database;
// the advisory lock makes one create the schema and the others find it.
func TestOpenRace(t *testing.T) {
	p := testenv.StartPostgres(t)
	dsn := p.NewDatabase(t)
	errs := make(chan error, 4)
	for range 4 {
		pool := mustPool(t, dsn)
		go func() {
			_, err := pgfs.Open(context.Background(), pool, pgfs.Options{})
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := mustPool(t, dsn).QueryRow(context.Background(), `SELECT count(*) FROM pgfs_migrations`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("pgfs_migrations has %d rows, %v", n, err)
	}
}
