package ftpd

import (
	"sync"
	"time"
)

// guard keeps per-IP state: live connections, recent login failures and bans.
// Entries are dropped once they hold nothing, so memory follows the number
// of active or recently failing addresses.
type guard struct {
	banAfter  int // <= 0: never ban
	window    time.Duration
	banFor    time.Duration
	maxConns  int // <= 0: no cap
	now       func() time.Time
	mu        sync.Mutex
	ips       map[string]*ipState
	sweepSize int // sweep stale entries when the map grows past this
}

type ipState struct {
	conns       int
	failures    []time.Time // within the window, oldest first
	bannedUntil time.Time
}

func newGuard(banAfter int, window, banFor time.Duration, maxConns int, now func() time.Time) *guard {
	return &guard{
		banAfter: banAfter, window: window, banFor: banFor, maxConns: maxConns, now: now,
		ips: make(map[string]*ipState), sweepSize: 1024,
	}
}

// connect registers a new connection from ip. It returns "" when the
// connection is allowed, or why it is refused: "banned" or "too_many".
func (g *guard) connect(ip string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	st := g.state(ip, now)
	switch {
	case now.Before(st.bannedUntil):
		return "banned"
	case g.maxConns > 0 && st.conns >= g.maxConns:
		return "too_many"
	}
	st.conns++
	return ""
}

// disconnect ends a connection registered by connect.
func (g *guard) disconnect(ip string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if st, ok := g.ips[ip]; ok {
		st.conns--
		g.dropIfEmpty(ip, st, g.now())
	}
}

// banned reports whether ip is banned now.
func (g *guard) banned(ip string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	st, ok := g.ips[ip]
	return ok && g.now().Before(st.bannedUntil)
}

// fail records a failed login from ip and reports whether it banned ip.
func (g *guard) fail(ip string) bool {
	if g.banAfter <= 0 {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	st := g.state(ip, now)
	st.failures = append(st.failures, now)
	if len(st.failures) < g.banAfter {
		return false
	}
	st.bannedUntil = now.Add(g.banFor)
	st.failures = nil
	return true
}

// state returns ip's entry, creating it, with failures outside the window dropped.
func (g *guard) state(ip string, now time.Time) *ipState {
	st, ok := g.ips[ip]
	if !ok {
		if len(g.ips) >= g.sweepSize {
			g.sweep(now)
		}
		st = &ipState{}
		g.ips[ip] = st
	}
	st.prune(now, g.window)
	return st
}

func (st *ipState) prune(now time.Time, window time.Duration) {
	cut := 0
	for cut < len(st.failures) && now.Sub(st.failures[cut]) >= window {
		cut++
	}
	st.failures = st.failures[cut:]
}

func (g *guard) dropIfEmpty(ip string, st *ipState, now time.Time) {
	st.prune(now, g.window)
	if st.conns <= 0 && len(st.failures) == 0 && !now.Before(st.bannedUntil) {
		delete(g.ips, ip)
	}
}

// sweep drops stale entries; it runs when the map doubles, so its cost is
// amortised over the insertions.
func (g *guard) sweep(now time.Time) {
	for ip, st := range g.ips {
		g.dropIfEmpty(ip, st, now)
	}
	g.sweepSize = max(1024, 2*len(g.ips))
}
