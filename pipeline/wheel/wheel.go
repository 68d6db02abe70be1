package wheel

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"campaignd"
)

// TimerStore is the durable timer index the Wheel keeps its timers in
// (implemented by *store.DB).
type TimerStore interface {
	PutTimer(kind, id string, due time.Time) (existed bool, err error)
	DeleteTimer(kind, id string) (existed bool, err error)
	DeleteTimerIf(kind, id string, due time.Time) (bool, error)
	MoveTimerIf(kind, id string, due, newDue time.Time) (bool, error)
	TimerDue(kind, id string) (time.Time, bool, error)
	ScanTimers(until time.Time, fn func(campaignd.Timer) bool) error
	CountTimers() (int, error)
}

// Events receives the wheel's measurements (metrics). Nil: none.
type Events interface {
	TimersPending(n int)
	TimerFired(kind string, lateness time.Duration)
}

// Options configure a Wheel. Zero values get the defaults given.
type Options struct {
	// Now and After are the clock; default time.Now and time.After. Tests
	// pass a fake clock whose Advance fires what After returned.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// Horizon is how far ahead timers are loaded into memory; default 1 min.
	Horizon time.Duration
	// MaxLoaded caps the timers held in memory (only kind and id, ~50
	// bytes each); default 65536. Later ones stay in the store until the
	// earlier ones have fired.
	MaxLoaded int
	Logger    *slog.Logger
	Events    Events
}

// TimerHandler runs a due timer. Returning nil deletes the timer (unless the
// handler moved it); an error retries it after a backoff (1 s doubling to
// 5 min). ctx ends when the wheel closes.
type TimerHandler func(ctx context.Context, id string, due time.Time) error

// Wheel is the durable timing wheel (SPEC §5): every timer lives in the
// store under a time-ordered key; the earliest ones — those due within the
// horizon, at most MaxLoaded — are also held in a min-heap in memory, and one
// goroutine sleeps until the first of them. Timers fire at their due time
// (within the clock's resolution), overdue ones at once after a restart.
//
// The heap is a cache: a timer is fired only after its due time is checked
// against the store, so moving or cancelling a timer only touches the store
// (and pushes the new due time when it falls inside the loaded range).
// Handlers of one kind run one at a time, in due order, on a goroutine of
// their own, so a slow kind (the daily report) never delays another.
type Wheel struct {
	db        TimerStore
	now       func() time.Time
	after     func(time.Duration) <-chan time.Time
	horizon   time.Duration
	maxLoaded int
	log       *slog.Logger
	events    Events

	handlers map[string]TimerHandler
	kinds    map[string]*kindQueue

	mu       sync.Mutex
	heap     timerHeap
	frontier int64 // every stored timer due before this (ms) is in the heap
	reload   bool  // the heap must be rebuilt from the store
	inflight map[timerRef]struct{}
	pending  int // timers in the store
	wake     chan struct{}
	started  bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type timerRef struct{ kind, id string }

type timerEntry struct {
	due  int64 // unix ms
	kind string
	id   string
}

type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// kindQueue holds the fired timers of one kind waiting for its handler.
type kindQueue struct {
	mu    sync.Mutex
	queue []timerEntry
	wake  chan struct{}
	fails map[string]int // consecutive handler errors per id
}

type nopEvents struct{}

func (nopEvents) TimersPending(int)                {}
func (nopEvents) TimerFired(string, time.Duration) {}

// NewWheel returns a wheel over db. Register handlers, then Start it.
func NewWheel(db TimerStore, o Options) *Wheel {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	if o.Horizon <= 0 {
		o.Horizon = time.Minute
	}
	if o.MaxLoaded <= 0 {
		o.MaxLoaded = 65536
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Events == nil {
		o.Events = nopEvents{}
	}
	return &Wheel{
		db: db, now: o.Now, after: o.After, horizon: o.Horizon, maxLoaded: o.MaxLoaded,
		log: o.Logger, events: o.Events,
		handlers: map[string]TimerHandler{}, kinds: map[string]*kindQueue{},
		inflight: map[timerRef]struct{}{}, wake: make(chan struct{}, 1), reload: true,
	}
}

// Handle registers the handler of timers of kind. Call it before Start.
func (w *Wheel) Handle(kind string, fn func(ctx context.Context, id string, due time.Time) error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		panic("pipeline: Wheel.Handle after Start")
	}
	w.handlers[kind] = fn
	w.kinds[kind] = &kindQueue{wake: make(chan struct{}, 1), fails: map[string]int{}}
}

// Schedule adds timer kind/id due at due, or moves it there if it exists.
// The timer is in the store when Schedule returns.
func (w *Wheel) Schedule(kind, id string, due time.Time) error {
	existed, err := w.db.PutTimer(kind, id, due)
	if err != nil {
		return err
	}
	w.mu.Lock()
	if !existed {
		w.pending++
		w.events.TimersPending(w.pending)
	}
	w.addLocked(timerEntry{due: due.UnixMilli(), kind: kind, id: id})
	w.mu.Unlock()
	return nil
}

// Cancel removes timer kind/id; cancelling a timer that does not exist is
// not an error.
func (w *Wheel) Cancel(kind, id string) error {
	existed, err := w.db.DeleteTimer(kind, id)
	if err != nil {
		return err
	}
	if existed {
		w.mu.Lock()
		w.pending--
		w.events.TimersPending(w.pending)
		w.mu.Unlock()
	}
	return nil
}

// Due returns when timer kind/id is due, and whether it exists.
func (w *Wheel) Due(kind, id string) (time.Time, bool, error) {
	return w.db.TimerDue(kind, id)
}

// addLocked puts e in the heap if it falls in the loaded range, and wakes
// the loop when it is the new earliest.
func (w *Wheel) addLocked(e timerEntry) {
	if w.reload || e.due >= w.frontier {
		return // the next load finds it in the store
	}
	heap.Push(&w.heap, e)
	if len(w.heap) > 2*w.maxLoaded {
		w.reload = true // too many near timers: keep only the earliest
	}
	if w.heap[0] == e || w.reload {
		w.poke()
	}
}

func (w *Wheel) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Start loads the timers, fires the overdue ones at once (logging how late
// they are) and keeps firing timers until ctx ends or Close.
func (w *Wheel) Start(ctx context.Context) error {
	n, err := w.db.CountTimers()
	if err != nil {
		return err
	}
	now := w.now()
	overdue, worst := 0, time.Duration(0)
	err = w.db.ScanTimers(now, func(t campaignd.Timer) bool {
		overdue++
		worst = max(worst, now.Sub(t.Due))
		return true
	})
	if err != nil {
		return err
	}
	if overdue > 0 {
		w.log.Warn("overdue timers fire now", slog.Int(logCount, overdue), slog.Duration(logLateness, worst))
	}
	ctx, cancel := context.WithCancel(ctx)
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		cancel()
		return errors.New("pipeline: wheel already started")
	}
	w.started = true
	w.cancel = cancel
	w.pending = n
	w.events.TimersPending(n)
	for kind, q := range w.kinds {
		w.wg.Add(1)
		go w.runKind(ctx, kind, q)
	}
	w.mu.Unlock()
	w.wg.Add(1)
	go w.loop(ctx)
	return nil
}

// Close stops the wheel and waits for running handlers to return.
func (w *Wheel) Close() {
	w.mu.Lock()
	cancel := w.cancel
	w.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	w.wg.Wait()
}

// Pending returns the number of timers in the store.
func (w *Wheel) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pending
}

// load rebuilds the heap from the store: the earliest timers due before
// now+horizon, at most maxLoaded of them, skipping those being handled.
func (w *Wheel) load(now time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	until := now.Add(w.horizon)
	frontier := until.UnixMilli()
	h := w.heap[:0]
	err := w.db.ScanTimers(until, func(t campaignd.Timer) bool {
		if _, ok := w.inflight[timerRef{t.Kind, t.ID}]; ok {
			return true
		}
		if _, ok := w.handlers[t.Kind]; !ok {
			return true // a kind nobody handles (any more): leave it in the store
		}
		if len(h) >= w.maxLoaded {
			frontier = t.Due.UnixMilli() // later timers wait for the next load
			return false
		}
		h = append(h, timerEntry{due: t.Due.UnixMilli(), kind: t.Kind, id: t.ID})
		return true
	})
	if err != nil {
		return err
	}
	clear(h[len(h):cap(h)])
	w.heap = h
	heap.Init(&w.heap)
	w.frontier = frontier
	w.reload = false
	return nil
}

// loop fires due timers and sleeps until the next one or the frontier.
func (w *Wheel) loop(ctx context.Context) {
	defer w.wg.Done()
	for {
		now := w.now()
		w.mu.Lock()
		needLoad := w.reload || now.UnixMilli() >= w.frontier
		w.mu.Unlock()
		if needLoad {
			if err := w.load(now); err != nil {
				w.log.Error("load timers", slog.Any(logError, err))
				select {
				case <-ctx.Done():
					return
				case <-w.after(time.Second):
				}
				continue
			}
		}
		w.mu.Lock()
		nowMS := now.UnixMilli()
		for len(w.heap) > 0 && w.heap[0].due <= nowMS && len(w.inflight) < w.maxLoaded {
			e := heap.Pop(&w.heap).(timerEntry)
			ref := timerRef{e.kind, e.id}
			if _, busy := w.inflight[ref]; busy {
				continue // its handler re-adds the timer if it was moved meanwhile
			}
			q := w.kinds[e.kind]
			if q == nil {
				continue
			}
			w.inflight[ref] = struct{}{}
			q.push(e)
		}
		next := w.frontier
		if len(w.heap) > 0 && w.heap[0].due < next {
			next = w.heap[0].due
		}
		full := len(w.inflight) >= w.maxLoaded
		w.mu.Unlock()
		var timer <-chan time.Time
		if !full {
			timer = w.after(time.Duration(next-nowMS) * time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer:
		}
	}
}

func (q *kindQueue) push(e timerEntry) {
	q.mu.Lock()
	q.queue = append(q.queue, e)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *kindQueue) pop() (timerEntry, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 {
		return timerEntry{}, false
	}
	e := q.queue[0]
	q.queue[0] = timerEntry{}
	q.queue = q.queue[1:]
	if len(q.queue) == 0 {
		q.queue = nil
	}
	return e, true
}

// runKind runs the handler of one kind for each fired timer, in order.
func (w *Wheel) runKind(ctx context.Context, kind string, q *kindQueue) {
	defer w.wg.Done()
	fn := w.handlers[kind]
	for {
		e, ok := q.pop()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-q.wake:
				continue
			}
		}
		again, readd := w.fire(ctx, fn, q, e)
		w.mu.Lock()
		delete(w.inflight, timerRef{e.kind, e.id})
		if readd {
			w.addLocked(timerEntry{due: again.UnixMilli(), kind: e.kind, id: e.id})
		}
		w.mu.Unlock()
		w.poke() // the loop may have stopped popping while too many were in flight
		if ctx.Err() != nil {
			return
		}
	}
}

// fire checks that the timer is still due at e.due, runs the handler and
// deletes or retries the timer. It returns the timer's new due time when it
// is still pending (moved, or retried) so the caller re-adds it once it is
// no longer in flight.
func (w *Wheel) fire(ctx context.Context, fn TimerHandler, q *kindQueue, e timerEntry) (time.Time, bool) {
	due := time.UnixMilli(e.due)
	cur, ok, err := w.db.TimerDue(e.kind, e.id)
	if err != nil {
		w.log.Error("read timer", slog.String(logKind, e.kind), slog.String(logID, e.id), slog.Any(logError, err))
		return w.retryLater(q, e, due, err)
	}
	if !ok {
		return time.Time{}, false // cancelled
	}
	if !cur.Equal(due) {
		return cur, true // moved: its new entry may have been skipped while in flight
	}
	lateness := w.now().Sub(due)
	w.events.TimerFired(e.kind, max(lateness, 0))
	if lateness > time.Second {
		w.log.Info("timer fired late", slog.String(logKind, e.kind), slog.String(logID, e.id), slog.Duration(logLateness, lateness))
	}
	err = callHandler(ctx, fn, e.id, due)
	if err != nil {
		if ctx.Err() != nil {
			return time.Time{}, false // closing: the timer stays and fires after the restart
		}
		return w.retryLater(q, e, due, err)
	}
	delete(q.fails, e.id)
	deleted, err := w.db.DeleteTimerIf(e.kind, e.id, due)
	if err != nil {
		w.log.Error("delete fired timer", slog.String(logKind, e.kind), slog.String(logID, e.id), slog.Any(logError, err))
		return w.reloadLater()
	}
	if deleted {
		w.mu.Lock()
		w.pending--
		w.events.TimersPending(w.pending)
		w.mu.Unlock()
		return time.Time{}, false
	}
	return w.dueNow(e) // the handler moved it
}

// dueNow returns the stored due time of e's timer, if it still exists.
func (w *Wheel) dueNow(e timerEntry) (time.Time, bool) {
	cur, ok, err := w.db.TimerDue(e.kind, e.id)
	if err != nil {
		return w.reloadLater()
	}
	return cur, ok
}

func callHandler(ctx context.Context, fn TimerHandler, id string, due time.Time) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("timer handler panic: %v", r)
		}
	}()
	return fn(ctx, id, due)
}

func (w *Wheel) retryLater(q *kindQueue, e timerEntry, due time.Time, cause error) (time.Time, bool) {
	q.fails[e.id]++
	backoff := time.Second << min(q.fails[e.id]-1, 9)
	backoff = min(backoff, 5*time.Minute)
	w.log.Warn("timer handler failed, retrying", slog.String(logKind, e.kind), slog.String(logID, e.id),
		slog.Duration(logRetryIn, backoff), slog.Any(logError, cause))
	newDue := w.now().Add(backoff)
	moved, err := w.db.MoveTimerIf(e.kind, e.id, due, newDue)
	if err != nil {
		w.log.Error("move failed timer", slog.String(logKind, e.kind), slog.String(logID, e.id), slog.Any(logError, err))
		return w.reloadLater()
	}
	if moved {
		return newDue, true
	}
	return w.dueNow(e)
}

// reloadLater makes the next round rebuild the heap from the store, after a
// store error left a timer there that the heap no longer holds.
func (w *Wheel) reloadLater() (time.Time, bool) {
	w.mu.Lock()
	w.reload = true
	w.mu.Unlock()
	return time.Time{}, false
}
