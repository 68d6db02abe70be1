package pgfs_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"campaignd/internal/testenv"
	"campaignd/pgfs"

	"github.com/spf13/afero"
)

// heapPeak samples HeapInuse until stop is called and returns the peak.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// TestLargeFileStreams writes a 100 MB file and reads it back, checking
// every byte and that the heap never grows by more than a few chunks: the
// file is never whole in memory, on either side.
func TestLargeFileStreams(t *testing.T) {
	size := int64(100 << 20)
	if testing.Short() || testenv.RaceEnabled {
		size = 20 << 20 // the race detector makes 100 MB take minutes
	}
	p := testenv.StartPostgres(t)
	db, _ := mustOpen(t, p)
	fsys := db.Fs("/")
	want := sum(t, newPattern(size))

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	stop := heapPeak()

	f, err := fsys.Create("/big.csv")
	if err != nil {
		t.Fatal(err)
	}
	// Odd-sized writes, so chunks fill across write boundaries.
	if n, err := io.CopyBuffer(struct{ io.Writer }{f}, newPattern(size), make([]byte, 100_003)); err != nil || n != size {
		t.Fatalf("write: %d, %v", n, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := fsys.Stat("/big.csv")
	if err != nil || fi.Size() != size {
		t.Fatalf("stat: %v, %v", fi, err)
	}
	r, err := fsys.Open("/big.csv")
	if err != nil {
		t.Fatal(err)
	}
	got := sum(t, struct{ io.Reader }{r})
	r.Close()
	peak := stop()
	if got != want {
		t.Fatal("read back differs from what was written")
	}
	growth := int64(peak) - int64(base.HeapInuse)
	t.Logf("%d MB written and read; heap in use grew by at most %.1f MB", size>>20, float64(growth)/(1<<20))
	if !testenv.RaceEnabled && growth > 32<<20 {
		t.Fatalf("heap grew by %d MB, want < 32 MB", growth>>20)
	}
	// Random access across chunk boundaries.
	r, _ = fsys.Open("/big.csv")
	defer r.Close()
	for _, off := range []int64{0, pgfs.ChunkSize - 3, 7*pgfs.ChunkSize + 11, size - 5} {
		b := make([]byte, 10)
		n, err := r.ReadAt(b, off)
		pat := newPattern(size)
		io.CopyN(io.Discard, pat, off)
		w := make([]byte, 10)
		m, _ := io.ReadFull(pat, w)
		if n != m || !bytes.Equal(b[:n], w[:m]) || (n < 10) != errors.Is(err, io.EOF) {
			t.Errorf("ReadAt(%d) = %d %q, %v; want %q", off, n, b[:n], err, w[:m])
		}
	}
}

// TestCrashSafety stops PostgreSQL at once (like a crash) in the middle of
// writes: a closed file is intact, a synced one has everything up to the
// Sync, and a file being written is a prefix of what was written, with a
// size that matches its bytes.
func TestCrashSafety(t *testing.T) {
	p := testenv.StartPostgres(t)
	dsn := p.NewDatabase(t)
	pool := mustPool(t, dsn)
	db, err := pgfs.Open(t.Context(), pool, pgfs.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	fsys := db.Fs("/")
	const n = 3*pgfs.ChunkSize + 1000
	content := make([]byte, 2*n)
	io.ReadFull(newPattern(int64(len(content))), content)

	closed, _ := fsys.Create("/closed")
	closed.Write(content[:n])
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	synced, _ := fsys.Create("/synced")
	synced.Write(content[:n])
	if err := synced.Sync(); err != nil {
		t.Fatal(err)
	}
	synced.Write(content[n:]) // not synced: one more chunk committed asynchronously, the rest held
	partial, _ := fsys.Create("/partial")
	partial.Write(content)                    // chunks committed asynchronously, never synced
	if _, err := partial.Stat(); err != nil { // waits for the chunk in flight, commits the tail
		t.Fatal(err)
	}

	p.Stop()
	p.Start()
	// Their unsynced commits may be lost: the handles must fail rather
	// than write on after a gap. /partial had nothing in flight: its
	// Close finds that the server restarted (EIO); /synced had a chunk in
	// flight when the server went, whose failure already broke it.
	if err := partial.Close(); !errors.Is(err, syscall.EIO) {
		t.Errorf("partial: Close after the crash: %v, want EIO", err)
	}
	if err := synced.Close(); err == nil {
		t.Error("synced: Close after the crash succeeded")
	}

	pool2 := mustPool(t, dsn)
	fsys2 := pgfs.New(pool2, "/")
	check := func(name string, min int) {
		t.Helper()
		f, err := fsys2.Open(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer f.Close()
		fi, _ := f.Stat()
		b, err := io.ReadAll(f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if int64(len(b)) != fi.Size() || len(b) < min || !bytes.Equal(b, content[:len(b)]) {
			t.Fatalf("%s: %d bytes (size %d), want a prefix of what was written of at least %d", name, len(b), fi.Size(), min)
		}
		t.Logf("%s: %d of %d bytes after the crash", name, len(b), len(content))
	}
	check("/closed", n)
	check("/synced", n)
	check("/partial", 0)
}

// TestConcurrency: two nodes (two pools) write different files at once;
// two writers of one name never leave a torn file; a reader during a write
// sees a growing prefix; O_EXCL lets exactly one creator win.
func TestConcurrency(t *testing.T) {
	p := testenv.StartPostgres(t)
	dsn := p.NewDatabase(t)
	db, err := pgfs.Open(t.Context(), mustPool(t, dsn), pgfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	node1, node2 := db.Fs("/"), pgfs.New(mustPool(t, dsn), "/")
	const size = 5*pgfs.ChunkSize + 123
	data := func(seed byte) []byte {
		b := make([]byte, size)
		io.ReadFull(newPattern(size), b)
		for i := range b {
			b[i] ^= seed
		}
		return b
	}
	a, b := data(1), data(2)

	t.Run("two nodes, two files", func(t *testing.T) {
		var wg sync.WaitGroup
		for _, n := range []struct {
			fs   *pgfs.Fs
			name string
			b    []byte
		}{{node1, "/n1", a}, {node2, "/n2", b}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f, err := n.fs.Create(n.name)
				if err != nil {
					t.Error(err)
					return
				}
				for off := 0; off < len(n.b); off += 10_000 {
					f.Write(n.b[off:min(off+10_000, len(n.b))])
				}
				if err := f.Close(); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		for name, want := range map[string][]byte{"/n1": a, "/n2": b} {
			for _, fsys := range []*pgfs.Fs{node1, node2} {
				f, _ := fsys.Open(name)
				got, err := io.ReadAll(f)
				f.Close()
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: %d bytes, %v", name, len(got), err)
				}
			}
		}
	})

	t.Run("two writers of one name with O_TRUNC", func(t *testing.T) {
		w1, _ := node1.Create("/same")
		w1.Write(a[:2*pgfs.ChunkSize])
		w2, _ := node2.Create("/same") // replaces w1's file
		w2.Write(b[:2*pgfs.ChunkSize])
		_, err1 := w1.Write(a[2*pgfs.ChunkSize:])
		if err := w1.Close(); err1 == nil {
			err1 = err
		}
		w2.Write(b[2*pgfs.ChunkSize:])
		if err := w2.Close(); err != nil {
			t.Fatal(err)
		}
		if !errors.Is(err1, fs.ErrNotExist) {
			t.Errorf("the replaced writer: %v, want ErrNotExist", err1)
		}
		got, _ := readAll(node1, "/same")
		if !bytes.Equal(got, b) {
			t.Errorf("/same holds %d bytes, not the last writer's file", len(got))
		}
	})

	t.Run("two writers of one name via rename", func(t *testing.T) {
		for round := range 5 {
			var wg sync.WaitGroup
			for i, fsys := range []*pgfs.Fs{node1, node2} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tmp := []string{"/.tmp1", "/.tmp2"}[i]
					f, err := fsys.Create(tmp)
					if err != nil {
						t.Error(err)
						return
					}
					f.Write([][]byte{a, b}[i])
					if err := f.Close(); err != nil {
						t.Error(err)
					}
					if err := fsys.Rename(tmp, "/target"); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			got, _ := readAll(node1, "/target")
			if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
				t.Fatalf("round %d: /target is torn (%d bytes)", round, len(got))
			}
		}
	})

	t.Run("reader during a write sees a prefix", func(t *testing.T) {
		w, _ := node1.Create("/growing")
		done := make(chan struct{})
		var reads atomic.Int64
		go func() {
			defer close(done)
			last := int64(-1)
			for last < size {
				got, err := readAll(node2, "/growing")
				if err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(got, a[:len(got)]) || int64(len(got)) < last {
					t.Errorf("read %d bytes, not a growing prefix (last %d)", len(got), last)
					return
				}
				last = int64(len(got))
				reads.Add(1)
			}
		}()
		for off := 0; off < size; off += 50_000 {
			w.Write(a[off:min(off+50_000, size)])
			if off%(2*pgfs.ChunkSize) < 50_000 {
				w.Sync()
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		<-done
		t.Logf("%d reads while writing", reads.Load())
	})

	t.Run("O_EXCL has one winner", func(t *testing.T) {
		var wins atomic.Int64
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fsys := []*pgfs.Fs{node1, node2}[i%2]
				f, err := fsys.OpenFile("/lock", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
				switch {
				case err == nil:
					wins.Add(1)
					f.Close()
				case !errors.Is(err, fs.ErrExist):
					t.Error(err)
				}
				if err := fsys.MkdirAll("/x/y/z", 0o755); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d creators won, want 1", wins.Load())
		}
	})
}

func readAll(fsys *pgfs.Fs, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// TestUnlinkedFileStaysForReaders: a reader open on a file that is removed
// or replaced reads the old bytes to the end, until the grace period has
// passed and a sweep deletes them; then it fails with ErrNotExist, and no
// chunk is left behind.
func TestUnlinkedFileStaysForReaders(t *testing.T) {
	p := testenv.StartPostgres(t)
	dsn := p.NewDatabase(t)
	pool := mustPool(t, dsn)
	long, err := pgfs.Open(t.Context(), pool, pgfs.Options{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	fsys := long.Fs("/")
	old := make([]byte, 3*pgfs.ChunkSize+5)
	io.ReadFull(newPattern(int64(len(old))), old)
	for _, unlink := range []func() error{
		func() error { return fsys.Remove("/d/f") },
		func() error { return afero.WriteFile(fsys, "/d/f", []byte("new"), 0o644) },
		func() error { afero.WriteFile(fsys, "/g", []byte("new"), 0o644); return fsys.Rename("/g", "/d/f") },
		func() error { return fsys.RemoveAll("/d") },
	} {
		fsys.MkdirAll("/d", 0o755)
		if err := afero.WriteFile(fsys, "/d/f", old, 0o644); err != nil {
			t.Fatal(err)
		}
		r, _ := fsys.Open("/d/f")
		first := make([]byte, 10)
		io.ReadFull(r, first)
		if err := unlink(); err != nil {
			t.Fatal(err)
		}
		if b, _ := afero.ReadFile(fsys, "/d/f"); bytes.Equal(b, old) {
			t.Fatal("the file was not unlinked")
		}
		rest, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(append(first, rest...), old) {
			t.Fatalf("the reader of the unlinked file got %d bytes, %v", 10+len(rest), err)
		}
	}
	// With a grace of a nanosecond, the next unlink sweeps.
	short := pgfs.New(pool, "/")
	afero.WriteFile(short, "/f", old, 0o644)
	r, _ := short.Open("/f")
	defer r.Close()
	if err := short.Remove("/f"); err != nil {
		t.Fatal(err)
	}
	short2, _ := pgfs.Open(t.Context(), pool, pgfs.Options{Grace: time.Nanosecond})
	for i := 0; i < 20; i++ { // each sweep takes up to 16
		afero.WriteFile(short2.Fs("/"), "/h", nil, 0o644)
		short2.Fs("/").Remove("/h")
	}
	if _, err := io.ReadAll(r); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reading a swept file: %v, want ErrNotExist", err)
	}
	var chunks, nodes int
	pool.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM pgfs_chunk), (SELECT count(*) FROM pgfs_node WHERE dir = '')`).
		Scan(&chunks, &nodes)
	if chunks != 0 || nodes != 0 {
		t.Fatalf("after the sweep: %d chunks, %d unlinked nodes left", chunks, nodes)
	}
}
