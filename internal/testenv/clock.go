package testenv

import (
	"sync"
	"testing"
	"time"
)

// Clock is a manual clock for tests: Now stands still until Advance moves it,
// and After's channels fire when Advance passes their time.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []clockWaiter
}

type clockWaiter struct {
	at time.Time
	ch chan time.Time
}

// NewClock returns a Clock that reads t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives the clock's time once Advance has
// moved it d past now; d <= 0 fires at once.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, clockWaiter{at: c.now.Add(d), ch: ch})
	return ch
}

// Advance moves the clock on and fires every waiter that is due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// AdvanceUntil advances the fake clock by step until cond holds. A goroutine
// that read Now just before an Advance registers its After against the old
// time; stepping again fires it, as real time passing would.
func AdvanceUntil(tb testing.TB, c *Clock, step time.Duration, what string, cond func() bool) {
	tb.Helper()
	start, last := time.Now(), time.Now()
	Wait(tb, what, func() bool {
		if cond() {
			return true
		}
		// Give the code a moment at the current time first, then step no
		// faster than every 50 ms so that time does not race ahead.
		if time.Since(start) > 200*time.Millisecond && time.Since(last) > 50*time.Millisecond {
			c.Advance(step)
			last = time.Now()
		}
		return cond()
	})
}
