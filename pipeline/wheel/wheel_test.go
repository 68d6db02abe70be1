package wheel_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"campaignd/internal/testenv"
	"campaignd/pipeline/wheel"
	"campaignd/store"
)

type fired struct {
	id       string
	due, now time.Time
}

type firedLog struct {
	mu  sync.Mutex
	got []fired
}

func (l *firedLog) add(f fired) {
	l.mu.Lock()
	l.got = append(l.got, f)
	l.mu.Unlock()
}

func (l *firedLog) list() []fired {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]fired(nil), l.got...)
}

func startWheel(tb testing.TB, db wheel.TimerStore, clk *testenv.Clock, log *firedLog, fail func(id string) error) *wheel.Wheel {
	tb.Helper()
	w := wheel.NewWheel(db, wheel.Options{Now: clk.Now, After: clk.After, Horizon: time.Minute})
	w.Handle("test", func(ctx context.Context, id string, due time.Time) error {
		log.add(fired{id, due, clk.Now()})
		if fail != nil {
			return fail(id)
		}
		return nil
	})
	if err := w.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(w.Close)
	return w
}

var wheelT0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func TestWheelFiresAtDue(t *testing.T) {
	db := testenv.OpenStore(t)
	clk := testenv.NewClock(wheelT0)
	var log firedLog
	w := startWheel(t, db, clk, &log, nil)
	for i, d := range []time.Duration{3 * time.Second, time.Second, 2 * time.Hour} {
		if err := w.Schedule("test", fmt.Sprint(i), wheelT0.Add(d)); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(999 * time.Millisecond)
	time.Sleep(10 * time.Millisecond)
	if n := len(log.list()); n != 0 {
		t.Fatalf("%d timers fired before their due time", n)
	}
	clk.Advance(time.Millisecond)
	testenv.Wait(t, "timer 1", func() bool { return len(log.list()) == 1 })
	clk.Advance(2 * time.Second)
	testenv.Wait(t, "timer 0", func() bool { return len(log.list()) == 2 })
	// The 2 h timer is beyond the horizon: it is loaded when the frontier is
	// reached, and fires on time.
	for i := 0; i < 120; i++ {
		clk.Advance(time.Minute)
		time.Sleep(time.Millisecond)
	}
	testenv.Wait(t, "timer 2", func() bool { return len(log.list()) == 3 })
	got := log.list()
	for i, want := range []string{"1", "0", "2"} {
		if got[i].id != want {
			t.Fatalf("fired[%d] = %s, want %s", i, got[i].id, want)
		}
		if late := got[i].now.Sub(got[i].due); late < 0 || late > time.Minute {
			t.Fatalf("timer %s fired %v after due", got[i].id, late)
		}
	}
	testenv.Wait(t, "timers deleted", func() bool { return w.Pending() == 0 })
	if n, _ := db.CountTimers(); n != 0 {
		t.Fatalf("%d timers left in the store", n)
	}
}

func TestWheelOverdueAtStartFireAtOnce(t *testing.T) {
	db := testenv.OpenStore(t)
	for i := 0; i < 5; i++ {
		if _, err := db.PutTimer("test", fmt.Sprint(i), wheelT0.Add(-time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	clk := testenv.NewClock(wheelT0)
	var log firedLog
	startWheel(t, db, clk, &log, nil)
	testenv.Wait(t, "overdue timers", func() bool { return len(log.list()) == 5 })
	got := log.list()
	if got[0].id != "4" || got[4].id != "0" {
		t.Fatalf("overdue timers fired out of order: %+v", got)
	}
}

func TestWheelMoveAndCancel(t *testing.T) {
	db := testenv.OpenStore(t)
	clk := testenv.NewClock(wheelT0)
	var log firedLog
	w := startWheel(t, db, clk, &log, nil)
	w.Schedule("test", "moved", wheelT0.Add(time.Second))
	w.Schedule("test", "cancelled", wheelT0.Add(time.Second))
	w.Schedule("test", "moved", wheelT0.Add(5*time.Second))
	if err := w.Cancel("test", "cancelled"); err != nil {
		t.Fatal(err)
	}
	if due, ok, _ := w.Due("test", "moved"); !ok || !due.Equal(wheelT0.Add(5*time.Second)) {
		t.Fatalf("Due = %v, %v", due, ok)
	}
	if _, ok, _ := w.Due("test", "cancelled"); ok {
		t.Fatal("cancelled timer still pending")
	}
	clk.Advance(2 * time.Second)
	time.Sleep(10 * time.Millisecond)
	if n := len(log.list()); n != 0 {
		t.Fatalf("%d timers fired at the old due time", n)
	}
	clk.Advance(3 * time.Second)
	testenv.Wait(t, "moved timer", func() bool { return len(log.list()) == 1 })
	if got := log.list()[0]; got.id != "moved" || !got.due.Equal(wheelT0.Add(5*time.Second)) {
		t.Fatalf("fired %+v", got)
	}
	// Moving earlier works as well.
	w.Schedule("test", "early", wheelT0.Add(time.Hour))
	w.Schedule("test", "early", wheelT0.Add(6*time.Second))
	clk.Advance(time.Second)
	testenv.Wait(t, "timer moved earlier", func() bool { return len(log.list()) == 2 })
}

func TestWheelRetriesFailedHandler(t *testing.T) {
	db := testenv.OpenStore(t)
	clk := testenv.NewClock(wheelT0)
	var log firedLog
	var mu sync.Mutex
	fails := 2
	w := startWheel(t, db, clk, &log, func(string) error {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			return errors.New("boom")
		}
		return nil
	})
	w.Schedule("test", "x", wheelT0)
	testenv.Wait(t, "first attempt", func() bool { return len(log.list()) == 1 })
	testenv.Wait(t, "retry scheduled", func() bool { due, _, _ := w.Due("test", "x"); return due.After(wheelT0) })
	clk.Advance(time.Second)
	testenv.Wait(t, "second attempt", func() bool { return len(log.list()) == 2 })
	testenv.Wait(t, "retry scheduled", func() bool { due, _, _ := w.Due("test", "x"); return due.After(wheelT0.Add(time.Second)) })
	clk.Advance(2 * time.Second)
	testenv.Wait(t, "third attempt", func() bool { return len(log.list()) == 3 })
	testenv.Wait(t, "timer deleted", func() bool { _, ok, _ := w.Due("test", "x"); return !ok })
}

func TestWheelHandlerMovesItsOwnTimer(t *testing.T) {
	db := testenv.OpenStore(t)
	clk := testenv.NewClock(wheelT0)
	var log firedLog
	var w *wheel.Wheel
	n := 0
	w = wheel.NewWheel(db, wheel.Options{Now: clk.Now, After: clk.After})
	w.Handle("sweep", func(ctx context.Context, id string, due time.Time) error {
		log.add(fired{id, due, clk.Now()})
		if n++; n < 3 {
			return w.Schedule("sweep", id, due.Add(time.Minute))
		}
		return nil
	})
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Schedule("sweep", "s", wheelT0)
	testenv.Wait(t, "first sweep", func() bool { return len(log.list()) == 1 })
	clk.Advance(time.Minute)
	testenv.Wait(t, "second sweep", func() bool { return len(log.list()) == 2 })
	clk.Advance(time.Minute)
	testenv.Wait(t, "third sweep", func() bool { return len(log.list()) == 3 })
	testenv.Wait(t, "timer deleted", func() bool { _, ok, _ := w.Due("sweep", "s"); return !ok })
}

func TestWheelSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	clk := testenv.NewClock(wheelT0)
	var log firedLog
	w := wheel.NewWheel(db, wheel.Options{Now: clk.Now, After: clk.After})
	w.Handle("test", func(ctx context.Context, id string, due time.Time) error {
		log.add(fired{id, due, clk.Now()})
		return nil
	})
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.Schedule("test", "a", wheelT0.Add(time.Hour))
	w.Schedule("test", "b", wheelT0.Add(2*time.Hour))
	w.Schedule("test", "b", wheelT0.Add(3*time.Hour)) // moved before the restart
	w.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	clk.Advance(4 * time.Hour) // the process was down past both due times
	w2 := startWheel(t, db, clk, &log, nil)
	testenv.Wait(t, "overdue timers after reopen", func() bool { return len(log.list()) == 2 })
	got := log.list()
	if got[0].id != "a" || got[1].id != "b" || !got[1].due.Equal(wheelT0.Add(3*time.Hour)) {
		t.Fatalf("fired %+v", got)
	}
	testenv.Wait(t, "timers deleted", func() bool { return w2.Pending() == 0 })
}

func TestWheelManyNearTimersBeyondMaxLoaded(t *testing.T) {
	db := testenv.OpenStore(t)
	clk := testenv.NewClock(wheelT0)
	var log firedLog
	w := wheel.NewWheel(db, wheel.Options{Now: clk.Now, After: clk.After, MaxLoaded: 16})
	w.Handle("test", func(ctx context.Context, id string, due time.Time) error {
		log.add(fired{id, due, clk.Now()})
		return nil
	})
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const n = 200
	for i := 0; i < n; i++ {
		w.Schedule("test", fmt.Sprint(i), wheelT0.Add(time.Duration(i%50)*time.Millisecond))
	}
	clk.Advance(time.Second)
	testenv.Wait(t, "all timers", func() bool { return len(log.list()) == n })
	seen := map[string]bool{}
	for _, f := range log.list() {
		if seen[f.id] {
			t.Fatalf("timer %s fired twice", f.id)
		}
		seen[f.id] = true
	}
}

// BenchmarkWheel1M schedules 1,000,000 timers over the next 30 days on an
// on-disk store and reports the heap they cost, measured after a GC: the
// wheel's own memory (only the near timers are held) and the whole heap
// (Badger's memtables and caches included) against a store opened empty.
func BenchmarkWheel1M(b *testing.B) {
	b.Run("timers=100k", func(b *testing.B) { benchWheel(b, 100_000, 30*24*time.Hour) })
	b.Run("timers=1M", func(b *testing.B) { benchWheel(b, 1_000_000, 30*24*time.Hour) })
	// Every timer inside the horizon: the wheel holds MaxLoaded of them.
	b.Run("timers=1M/all-near", func(b *testing.B) { benchWheel(b, 1_000_000, 50*time.Second) })
}

// benchWheel schedules n timers due from wheelT0+1s over span and reports the
// heap in use: heapMB is the whole growth since the empty store was opened,
// right after the last Schedule (Badger's compaction and memtable buffers
// included, which are transient); steadyHeapMB is the same growth once the
// heap has stopped shrinking — what holding n pending timers costs; wheelMB
// is what the wheel itself holds (the steady heap with the wheel minus the
// heap once it is closed and dropped, the store unchanged).
func benchWheel(b *testing.B, n int, span time.Duration) {
	for range b.N {
		db, err := store.Open(store.Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		clk := testenv.NewClock(wheelT0)
		w := wheel.NewWheel(db, wheel.Options{Now: clk.Now, After: clk.After})
		w.Handle("retry", func(context.Context, string, time.Time) error { return nil })
		if err := w.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		base := heapInUse()
		start := time.Now()
		const workers = 8
		var wg sync.WaitGroup
		for g := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := g; i < n; i += workers {
					due := wheelT0.Add(time.Second + time.Duration(i)*(span/time.Duration(n)))
					if err := w.Schedule("retry", fmt.Sprintf("%d/%d", i/1000, i%1000), due); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		after := heapInUse()
		b.ReportMetric(float64(after-base)/(1<<20), "heapMB")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "schedules/s")
		// What the pending timers cost once Badger has absorbed the writes:
		// its compaction and memtable buffers are transient, so wait until
		// the heap stops shrinking (at most a minute).
		steady, still := after, 0
		for i := 0; i < 60 && still < 8; i++ {
			time.Sleep(time.Second)
			if h := heapInUse(); h+(1<<20) < steady {
				steady, still = h, 0
			} else {
				still++
			}
		}
		b.ReportMetric((float64(steady)-float64(base))/(1<<20), "steadyHeapMB")
		if w.Pending() != n {
			b.Fatalf("pending = %d", w.Pending())
		}
		w.Close()
		w = nil
		without := heapInUse()
		b.ReportMetric((float64(steady)-float64(without))/(1<<20), "wheelMB")
		db.Close()
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
