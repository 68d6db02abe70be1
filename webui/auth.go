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
	"strconv"
	"strings"
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

// verify checks a user name and password, applying the login throttle:
// every failure waits LoginDelay, and too many lock the name and the
// address for a while.
func (s *Server) verify(ctx context.Context, name, password, ip string) (User, error) {
	if wait := s.throttle.locked(name, ip); wait > 0 {
		s.log.Warn("login refused: locked", keyUser, name, keyRemote, ip)
		return User{}, &errThrottled{retry: wait}
	}
	u, known := s.users[name]
	hash := []byte(u.PasswordHash)
	if !known {
		hash = s.dummyHash()
	}
	if known && s.auth.ok(name, password, u.PasswordHash) {
		return u, nil
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || !known {
		locked := s.throttle.fail(name, ip)
		s.log.Warn("login failed", keyUser, name, keyRemote, ip, "locked", locked)
		t := time.NewTimer(s.o.LoginDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		return User{}, errBadLogin
	}
	s.throttle.success(name)
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
	s.renderPage(w, r, http.StatusOK, "login", &page{Title: "Sign in", Data: loginPage{Next: safeNext(r.URL.Query().Get("next"))}})
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
		s.renderPage(w, r, httpStatus(err), "login", &page{Title: "Sign in", Data: loginPage{User: name, Next: next, Error: errorMessage(err)}})
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

// safeNext keeps a post-login redirect on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/broadcasts"
	}
	return next
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

// throttle counts failed logins per user name and per address; reaching
// the limit (4× for an address, which many users may share) locks logins
// from it for lockFor. Locking a name lets an attacker lock a user out for
// a while; that is the price of stopping a distributed guess.
type throttle struct {
	mu      sync.Mutex
	limit   int
	lockFor time.Duration
	now     func() time.Time
	m       map[string]*failures
}

type failures struct {
	times       []time.Time
	lockedUntil time.Time
}

const maxThrottleEntries = 100_000

func newThrottle(limit int, lockFor time.Duration, now func() time.Time) *throttle {
	return &throttle{limit: limit, lockFor: lockFor, now: now, m: make(map[string]*failures)}
}

// locked returns how long logins for name from ip stay locked (0: not).
func (t *throttle) locked(name, ip string) time.Duration {
	name = clip(name)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var wait time.Duration
	for _, k := range []string{"u:" + name, "ip:" + ip} {
		if f := t.m[k]; f != nil && now.Before(f.lockedUntil) {
			wait = max(wait, f.lockedUntil.Sub(now))
		}
	}
	return wait
}

// fail records a failure and reports whether it locked name or ip.
func (t *throttle) fail(name, ip string) bool {
	name = clip(name)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.m) > maxThrottleEntries {
		t.prune(now)
	}
	locked := false
	for k, limit := range map[string]int{"u:" + name: t.limit, "ip:" + ip: 4 * t.limit} {
		f := t.m[k]
		if f == nil {
			f = &failures{}
			t.m[k] = f
		}
		keep := f.times[:0]
		for _, at := range f.times {
			if now.Sub(at) < t.lockFor {
				keep = append(keep, at)
			}
		}
		f.times = append(keep, now)
		if len(f.times) >= limit {
			f.lockedUntil = now.Add(t.lockFor)
			f.times = nil
			locked = true
		}
	}
	return locked
}

// success forgets a user name's failures (not the address's).
func (t *throttle) success(name string) {
	name = clip(name)
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, "u:"+name)
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
		if now.After(f.lockedUntil) && (len(f.times) == 0 || now.Sub(f.times[len(f.times)-1]) > t.lockFor) {
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
