package engine

import (
	"sync"
	"sync/atomic"
	"testing"

	"campaignd/internal/testenv"
)

// TestEffectsOnePath: work queued before start runs once the workers
// start; do never blocks, however much is queued while every worker is
// busy; no more than the fixed number of workers run at once; stop runs
// what is queued and what that queues, then later work is dropped.
func TestEffectsOnePath(t *testing.T) {
	f := newEffects()
	var ran atomic.Int32
	f.do(func() { ran.Add(1) })
	if ran.Load() != 0 {
		t.Fatal("work ran before start")
	}
	f.start(effectWorkers)
	testenv.Wait(t, "work queued before start", func() bool { return ran.Load() == 1 })

	release := make(chan struct{})
	var running, most atomic.Int32
	var mu sync.Mutex
	for range 1000 {
		f.do(func() {
			n := running.Add(1)
			mu.Lock()
			most.Store(max(most.Load(), n))
			mu.Unlock()
			<-release
			running.Add(-1)
			ran.Add(1)
		})
	}
	testenv.Wait(t, "every worker busy", func() bool { return running.Load() == effectWorkers })
	// do under a lock the work takes must not wait for the work.
	var held sync.Mutex
	held.Lock()
	f.do(func() { held.Lock(); held.Unlock(); ran.Add(1) })
	held.Unlock()
	close(release)
	f.do(func() { f.do(func() { ran.Add(1) }) }) // work that queues work
	f.stop()
	if got := ran.Load(); got != 1+1000+1+1 {
		t.Fatalf("%d pieces of work ran, want %d", got, 1+1000+1+1)
	}
	if m := most.Load(); m > effectWorkers {
		t.Fatalf("%d ran at once, want at most %d", m, effectWorkers)
	}
	if f.do(func() { ran.Add(1) }) {
		t.Fatal("work accepted after stop")
	}
}
