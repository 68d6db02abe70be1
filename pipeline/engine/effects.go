package engine

import "sync"

// effectWorkers is how many goroutines run the engine's side effects: two,
// so that a long one (cancelling a million messages) does not hold up the
// reading of the other runs' next pages.
const effectWorkers = 2

// effects is the one path of the work the engine decides while it holds
// e.mu: store writes and timers, reading a run's next page, completing or
// cancelling a broadcast. The work is queued (do never blocks, so it may be
// called under the lock) and run, in order of arrival, by a fixed set of
// goroutines started in one place (start) and stopped in one place (stop).
//
// The engine's goroutines are thus, all of them: the submitters, the
// writer and its acknowledgements of receipts (receipt.go), these workers,
// and the watchers of Start (the context's end) and Close (the submitters'
// end).
type effects struct {
	mu      sync.Mutex
	cond    *sync.Cond
	q       []func()
	closing bool // stop was called: the workers end once the queue is empty
	stopped bool // the workers have ended: work queued now is dropped
	wg      sync.WaitGroup
}

func newEffects() *effects {
	f := &effects{}
	f.cond = sync.NewCond(&f.mu)
	return f
}

// start starts the workers; work queued before runs then.
func (f *effects) start(n int) {
	for range n {
		f.wg.Add(1)
		go f.work()
	}
}

// do queues fn. It reports false when the workers have stopped: the work
// is dropped (what it would have done, a restart does from the store).
func (f *effects) do(fn func()) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return false
	}
	f.q = append(f.q, fn)
	f.cond.Signal()
	return true
}

func (f *effects) work() {
	defer f.wg.Done()
	for {
		f.mu.Lock()
		for len(f.q) == 0 && !f.closing {
			f.cond.Wait()
		}
		if len(f.q) == 0 {
			f.mu.Unlock()
			return
		}
		fn := f.q[0]
		f.q[0] = nil
		f.q = f.q[1:]
		f.mu.Unlock()
		fn()
	}
}

// stop runs the queued work to its end, and the work it queues, then
// stops the workers. Work queued by anything else after they have ended is
// dropped.
func (f *effects) stop() {
	f.mu.Lock()
	f.closing = true
	f.cond.Broadcast()
	f.mu.Unlock()
	f.wg.Wait()
	f.mu.Lock()
	f.stopped = true
	f.q = nil
	f.mu.Unlock()
}
