package webui

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"campaignd"
)

// principal is who makes a request: a console session or an API user.
type principal struct {
	User    string
	Role    campaignd.Role
	Session *campaignd.Session // nil for the API
}

type ctxKey struct{}

func principalFrom(ctx context.Context) *principal {
	p, _ := ctx.Value(ctxKey{}).(*principal)
	return p
}

func withPrincipal(r *http.Request, p *principal) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), ctxKey{}, p))
}

var errBadLogin = campaignd.Errorf(campaignd.EUNAUTHORIZED, "Wrong user name or password.")

// newDummyHash returns the hash compared against when the user name is
// unknown, made with the cost of the configured hashes, so that a wrong
// name costs as long as a wrong password.
func newDummyHash(users []User) func() []byte {
	cost := bcrypt.DefaultCost
	for _, u := range users {
		if c, err := bcrypt.Cost([]byte(u.PasswordHash)); err == nil {
			cost = c
			break
		}
	}
	return sync.OnceValue(func() []byte {
		h, _ := bcrypt.GenerateFromPassword([]byte("campaignd-no-such-user"), cost)
		return h
	})
}

// verify checks a user name and password under the login throttle. The
// attempt is reserved against the name's and the address's limits before
// bcrypt runs, so concurrent guesses cannot outnumber the limits; every
// failure waits LoginDelay, and too many lock the name and the address for
// a while. bcrypt itself runs under a small semaphore, so a flood of logins
// costs a bounded share of the CPU.
func (s *Server) verify(ctx context.Context, name, password, ip string) (User, error) {
	u, known := s.users[name]
	if known && s.auth.ok(name, password, u.PasswordHash) {
		// Credentials proven a moment ago need no reservation (a script's
		// concurrent API calls are not guesses), but a lock still holds.
		if wait := s.throttle.locked(name, ip); wait > 0 {
			s.log.Warn("login refused: locked", keyUser, clip(name), keyRemote, ip)
			s.o.OnLogin("throttled")
			return User{}, &errThrottled{retry: wait}
		}
		return u, nil
	}
	done, wait := s.throttle.reserve(name, ip)
	if wait > 0 {
		s.log.Warn("login refused: locked", keyUser, clip(name), keyRemote, ip)
		s.o.OnLogin("throttled")
		return User{}, &errThrottled{retry: wait}
	}
	hash := []byte(u.PasswordHash)
	if !known {
		hash = s.dummyHash()
	}
	select {
	case s.bcryptSem <- struct{}{}:
	case <-ctx.Done():
		done(attemptAbandoned) // nothing was checked: the attempt does not count
		return User{}, &errThrottled{retry: busyRetry}
	}
	err := s.compare(hash, []byte(password))
	<-s.bcryptSem
	if err != nil || !known {
		locked := done(attemptFailed)
		s.log.Warn("login failed", keyUser, clip(name), keyRemote, ip, "locked", locked)
		s.o.OnLogin("bad_credentials")
		t := time.NewTimer(s.o.LoginDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		return User{}, errBadLogin
	}
	done(attemptOK)
	s.o.OnLogin("ok")
	s.auth.remember(name, password, u.PasswordHash)
	return u, nil
}

// cookieName has the __Host- prefix over TLS: the browser then only
// accepts it Secure, host-only and for path /.
func (s *Server) cookieName() string {
	if s.o.TLS {
		return "__Host-campaignd"
	}
	return "campaignd_session"
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

type loginPage struct {
	User  string
	Next  string
	Error string
}

func (s *Server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	s.renderPage(w, r, http.StatusOK, "login", &page{Title: s.loc(r).T("Sign in"), Data: loginPage{Next: safeNext(r.URL.Query().Get("next"))}})
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	name, password := r.PostFormValue("username"), r.PostFormValue("password")
	next := safeNext(r.PostFormValue("next"))
	u, err := s.verify(r.Context(), name, password, remoteIP(r))
	if err != nil {
		var t *errThrottled
		if errors.As(err, &t) {
			w.Header().Set("Retry-After", strconv.Itoa(int(t.retry.Seconds()+0.999)))
		}
		s.renderPage(w, r, httpStatus(err), "login", &page{Title: s.loc(r).T("Sign in"), Data: loginPage{User: name, Next: next, Error: errorMessage(err)}})
		return
	}
	now := s.o.Now()
	sess := &campaignd.Session{
		ID:        randomToken(),
		User:      u.Name,
		Role:      u.Role,
		CSRFToken: randomToken(),
		CreatedAt: now,
		ExpiresAt: now.Add(s.o.SessionTTL),
	}
	if err := s.o.Backend.SaveSession(sess); err != nil {
		s.Error(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     s.cookieName(),
		Value:    sess.ID,
		Path:     "/",
		Expires:  sess.ExpiresAt,
		HttpOnly: true,
		Secure:   s.o.TLS,
		SameSite: http.SameSiteLaxMode,
	})
	s.log.Info("login", keyUser, u.Name, keyRemote, remoteIP(r))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	if err := s.o.Backend.DeleteSession(p.Session.ID); err != nil && campaignd.ErrorCode(err) != campaignd.ENOTFOUND {
		s.Error(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.o.TLS, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a post-login redirect on this site: only a relative path
// starting with a single "/" is accepted, and it is sent back re-encoded.
// Browsers drop TAB, CR and LF from URLs and read "\" as "/", so "/\t/evil"
// or "/\\evil" would leave the site; those bytes are refused outright, at
// every level of percent-decoding, as is anything with a scheme or a host.
// Anything refused becomes the default page.
func safeNext(next string) string {
	const home = "/broadcasts"
	if len(next) > 2048 || !sameSitePath(next) {
		return home
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return home
	}
	// Percent-decoding must not reveal what the raw form may not hold.
	p := u.EscapedPath()
	for range 3 {
		d, err := url.PathUnescape(p)
		if err != nil || !sameSitePath(d) {
			return home
		}
		if d == p {
			break
		}
		p = d
	}
	// Dot segments are resolved here rather than by the browser.
	out := path.Clean(u.EscapedPath())
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			return home
		}
		out += "?" + q.Encode()
	}
	if !sameSitePath(out) {
		return home
	}
	return out
}

// sameSitePath reports whether p starts with exactly one "/" and holds no
// control character, backslash or space that a browser would strip or
// rewrite.
func sameSitePath(p string) bool {
	if len(p) == 0 || p[0] != '/' || (len(p) > 1 && (p[1] == '/' || p[1] == '\\')) {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

func loginURL(r *http.Request) string {
	if r.Method != http.MethodGet || r.URL.Path == "/" {
		return "/login"
	}
	return "/login?next=" + url.QueryEscape(r.URL.RequestURI())
}

// requireSession admits requests with a live console session; the role is
// taken from the current configuration, not from the session.
func (s *Server) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		unauth := campaignd.Errorf(campaignd.EUNAUTHORIZED, "Please sign in.")
		c, err := r.Cookie(s.cookieName())
		if err != nil || c.Value == "" {
			s.Error(w, r, unauth)
			return
		}
		sess, err := s.o.Backend.Session(c.Value)
		if campaignd.ErrorCode(err) == campaignd.ENOTFOUND {
			s.Error(w, r, unauth)
			return
		} else if err != nil {
			s.Error(w, r, err)
			return
		}
		u, known := s.users[sess.User]
		if !known || !s.o.Now().Before(sess.ExpiresAt) {
			s.Error(w, r, unauth)
			return
		}
		next.ServeHTTP(w, withPrincipal(r, &principal{User: u.Name, Role: u.Role, Session: sess}))
	})
}

// requireCSRF checks the session's token on every state-changing request,
// from the X-CSRF-Token header (htmx, set by app.js) or the csrf form field.
func (s *Server) requireCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		token := r.Header.Get("X-CSRF-Token")
		if token == "" {
			token = r.PostFormValue("csrf")
		}
		want := principalFrom(r.Context()).Session.CSRFToken
		if token == "" || want == "" || subtle.ConstantTimeCompare([]byte(token), []byte(want)) != 1 {
			s.Error(w, r, campaignd.Errorf(campaignd.EFORBIDDEN, "Missing or invalid CSRF token. Reload the page and try again."))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireAct admits only roles that may act on broadcasts and reports.
func (s *Server) requireAct(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := principalFrom(r.Context()); p == nil || !p.Role.CanAct() {
			s.Error(w, r, campaignd.Errorf(campaignd.EFORBIDDEN, "Your role may view but not act on broadcasts or reports."))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireBasicAuth authenticates API requests with HTTP Basic auth, under
// the same throttle as the login form. Cookies are ignored.
func (s *Server) requireBasicAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, password, ok := r.BasicAuth()
		if !ok {
			s.Error(w, r, campaignd.Errorf(campaignd.EUNAUTHORIZED, "HTTP Basic authentication required."))
			return
		}
		u, err := s.verify(r.Context(), name, password, remoteIP(r))
		if err != nil {
			s.Error(w, r, err)
			return
		}
		next.ServeHTTP(w, withPrincipal(r, &principal{User: u.Name, Role: u.Role}))
	})
}

// throttle counts login attempts per user name and per address. An
// attempt is reserved before its password is checked and counts as a
// failure until it succeeds, so N concurrent guesses are N attempts, not
// one: reaching the limit (4× for an address, which many users may share)
// with failures and attempts in flight refuses further attempts, and
// reaching it with failures locks logins for lockFor. Locking a name lets
// an attacker lock a user out for a while; that is the price of stopping a
// distributed guess.
type throttle struct {
	mu      sync.Mutex
	limit   int
	lockFor time.Duration
	now     func() time.Time
	m       map[string]*failures
}

type failures struct {
	times       []time.Time // failures within lockFor
	pending     int         // attempts being checked
	lockedUntil time.Time
}

const maxThrottleEntries = 100_000

// busyRetry is the Retry-After of an attempt refused because the limit is
// taken by attempts still being checked.
const busyRetry = 2 * time.Second

func newThrottle(limit int, lockFor time.Duration, now func() time.Time) *throttle {
	return &throttle{limit: limit, lockFor: lockFor, now: now, m: make(map[string]*failures)}
}

// keys returns the throttle's counters for an attempt and their limits.
func (t *throttle) keys(name, ip string) ([2]string, [2]int) {
	return [2]string{"u:" + clip(name), "ip:" + ip}, [2]int{t.limit, 4 * t.limit}
}

// locked returns how long logins for name from ip stay locked (0: not).
func (t *throttle) locked(name, ip string) time.Duration {
	ks, _ := t.keys(name, ip)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var wait time.Duration
	for _, k := range ks {
		if f := t.m[k]; f != nil && now.Before(f.lockedUntil) {
			wait = max(wait, f.lockedUntil.Sub(now))
		}
	}
	return wait
}

// The outcomes of a reserved attempt.
type attempt int

const (
	attemptOK        attempt = iota // the password was right: the name's failures are forgotten
	attemptFailed                   // wrong: a failure is recorded (and may lock)
	attemptAbandoned                // never checked (the client left): only the reservation ends
)

// reserve admits one attempt for name from ip, or returns how long to wait
// (> 0) when the name or the address is locked or its limit is taken by
// attempts in flight. done must be called with the outcome of an admitted
// attempt (later calls change nothing); it reports whether a failure locked
// name or ip.
func (t *throttle) reserve(name, ip string) (done func(attempt) bool, wait time.Duration) {
	ks, limits := t.keys(name, ip)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.m) > maxThrottleEntries {
		t.prune(now)
	}
	for i, k := range ks {
		f := t.m[k]
		if f == nil {
			continue
		}
		if now.Before(f.lockedUntil) {
			wait = max(wait, f.lockedUntil.Sub(now))
			continue
		}
		f.expire(now, t.lockFor)
		if len(f.times)+f.pending >= limits[i] {
			wait = max(wait, busyRetry)
		}
	}
	if wait > 0 {
		return nil, wait
	}
	for _, k := range ks {
		f := t.m[k]
		if f == nil {
			f = &failures{}
			t.m[k] = f
		}
		f.pending++
	}
	var once sync.Once
	locked := false
	return func(a attempt) bool {
		once.Do(func() { locked = t.finish(ks, limits, a) })
		return locked
	}, 0
}

// finish ends a reserved attempt: a failure is recorded (and may lock), a
// success forgets the name's failures (not the address's).
func (t *throttle) finish(ks [2]string, limits [2]int, a attempt) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	locked := false
	for i, k := range ks {
		f := t.m[k]
		if f == nil { // pruned meanwhile
			f = &failures{pending: 1}
			t.m[k] = f
		}
		f.pending = max(0, f.pending-1)
		switch {
		case a == attemptOK && i == 0:
			f.times = nil
		case a == attemptFailed:
			f.expire(now, t.lockFor)
			f.times = append(f.times, now)
			if len(f.times) >= limits[i] {
				f.lockedUntil = now.Add(t.lockFor)
				f.times = nil
				locked = true
			}
		}
		if f.pending == 0 && len(f.times) == 0 && !now.Before(f.lockedUntil) {
			delete(t.m, k)
		}
	}
	return locked
}

// expire drops failures older than lockFor.
func (f *failures) expire(now time.Time, lockFor time.Duration) {
	keep := f.times[:0]
	for _, at := range f.times {
		if now.Sub(at) < lockFor {
			keep = append(keep, at)
		}
	}
	f.times = keep
}

// clip bounds the user names the throttle keeps, whatever is sent.
func clip(name string) string {
	if len(name) > 64 {
		return name[:64]
	}
	return name
}

func (t *throttle) prune(now time.Time) {
	for k, f := range t.m {
		if f.pending == 0 && now.After(f.lockedUntil) && (len(f.times) == 0 || now.Sub(f.times[len(f.times)-1]) > t.lockFor) {
			delete(t.m, k)
		}
	}
}

// authCache remembers recent good API credentials for a few minutes so
// that a script calling the API does not pay a bcrypt per request. Only
// an HMAC of the credentials is kept.
type authCache struct {
	mu  sync.Mutex
	key []byte
	m   map[string]time.Time
}

const authCacheTTL = 5 * time.Minute

func newAuthCache() *authCache {
	k := make([]byte, 32)
	rand.Read(k)
	return &authCache{key: k, m: make(map[string]time.Time)}
}

func (c *authCache) sum(name, password, hash string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(name + "\x00" + password + "\x00" + hash))
	return string(m.Sum(nil))
}

func (c *authCache) ok(name, password, hash string) bool {
	k := c.sum(name, password, hash)
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, found := c.m[k]
	if found && time.Now().After(exp) {
		delete(c.m, k)
		return false
	}
	return found
}

func (c *authCache) remember(name, password, hash string) {
	k := c.sum(name, password, hash)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) > 1000 {
		clear(c.m)
	}
	c.m[k] = time.Now().Add(authCacheTTL)
}
