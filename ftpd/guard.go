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
	ips       map[string]*ipState // by IP, and by "user:"+name for user names
	sweepSize int                 // sweep stale entries when the map grows past this
}

type ipState struct {
	conns       int
	inflight    int         // login attempts reserved and not yet decided
	failures    []time.Time // within the window, oldest first
	bannedUntil time.Time
}

// userKey is the guard key of a user name (IPs never contain ':'+"user").
func userKey(user string) string { return "user:" + user }

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

// bannedUser reports whether the user name is banned now.
func (g *guard) bannedUser(user string) bool { return g.banned(userKey(user)) }

// Results of guard.begin.
const (
	attemptReserved = iota // go ahead and check the password, then call end
	attemptBanned          // ip or user is banned: refuse
	attemptBusy            // attempts in flight could reach the ban: wait and retry
)

// begin reserves a login attempt from ip for user BEFORE the password is
// checked, so that concurrent attempts cannot all be checked before the
// first failure is recorded. It answers attemptBanned when ip or user is
// banned, and attemptBusy when the failures recorded plus the attempts in
// flight already reach banAfter, for ip or for user: should they all fail,
// one more would go past the ban. attemptReserved must be followed by end.
func (g *guard) begin(ip, user string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	keys := [2]string{ip, userKey(user)}
	states := [2]*ipState{g.state(keys[0], now), g.state(keys[1], now)}
	result := attemptReserved
	for _, st := range states {
		switch {
		case now.Before(st.bannedUntil):
			result = attemptBanned
		case result == attemptReserved && g.banAfter > 0 && len(st.failures)+st.inflight >= g.banAfter:
			result = attemptBusy
		}
	}
	for i, st := range states {
		if result == attemptReserved {
			st.inflight++
		} else {
			g.dropIfEmpty(keys[i], st, now)
		}
	}
	return result
}

// end settles an attempt reserved by begin: a failure is recorded against
// ip and user and may ban them. It reports whether it banned ip.
func (g *guard) end(ip, user string, failed bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	banned := false
	for i, k := range [2]string{ip, userKey(user)} {
		st := g.state(k, now)
		st.inflight--
		if failed && g.banAfter > 0 {
			st.failures = append(st.failures, now)
			if len(st.failures) >= g.banAfter {
				st.bannedUntil = now.Add(g.banFor)
				st.failures = nil
				banned = banned || i == 0
			}
		}
		g.dropIfEmpty(k, st, now)
	}
	return banned
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
	if st.conns <= 0 && st.inflight <= 0 && len(st.failures) == 0 && !now.Before(st.bannedUntil) {
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
