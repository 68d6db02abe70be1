package webui

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
)

// countChecks makes s count (and slow down, like a real bcrypt) its
// password checks.
func countChecks(s *Server) *atomic.Int64 {
	var n atomic.Int64
	real := s.compare
	s.compare = func(hash, pw []byte) error {
		n.Add(1)
		time.Sleep(20 * time.Millisecond)
		return real(hash, pw)
	}
	return &n
}

// loginReq is a console login or an API request with Basic auth, from ip.
func loginReq(api bool, name, password, ip string) *http.Request {
	var r *http.Request
	if api {
		r = httptest.NewRequest("GET", "/api/v1/broadcasts", nil)
		r.SetBasicAuth(name, password)
	} else {
		form := url.Values{"username": {name}, "password": {password}}
		r = httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	r.RemoteAddr = ip + ":40000"
	return r
}

// burst sends n requests at once and returns how many got each status.
func burst(h http.Handler, n int, req func(i int) *http.Request) map[int]int {
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := req(i)
			<-start
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			mu.Lock()
			codes[w.Code]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return codes
}

// TestLoginThrottleConcurrent: guesses sent at once cannot outnumber the
// limits (5 per name, 20 per address), on the login form and on the API's
// Basic auth; once they are used up the right password is refused too.
func TestLoginThrottleConcurrent(t *testing.T) {
	const perName, perIP = 5, 20
	ok := map[bool]int{false: http.StatusSeeOther, true: http.StatusOK}
	for _, api := range []bool{false, true} {
		name := map[bool]string{false: "form", true: "basic"}[api]
		t.Run(name+"/one name", func(t *testing.T) {
			var mu sync.Mutex
			results := map[string]int{}
			s, _ := MustOpenServer(t, func(o *Options) {
				o.LoginLockAfter = perName
				o.OnLogin = func(r string) { mu.Lock(); results[r]++; mu.Unlock() }
			})
			checks := countChecks(s)
			codes := burst(s.Handler(), 40, func(int) *http.Request { return loginReq(api, "admin", "guess", "192.0.2.10") })
			mu.Lock()
			if results["bad_credentials"] != perName || results["throttled"] != 40-perName {
				t.Errorf("login events %v", results)
			}
			mu.Unlock()
			if n := checks.Load(); n != perName {
				t.Errorf("%d passwords checked for 40 concurrent guesses, want %d", n, perName)
			}
			if codes[http.StatusUnauthorized] != int(checks.Load()) || codes[http.StatusTooManyRequests] != 40-int(checks.Load()) {
				t.Errorf("statuses %v for %d checks", codes, checks.Load())
			}
			before := checks.Load()
			w := httptest.NewRecorder()
			s.Handler().ServeHTTP(w, loginReq(api, "admin", testPasswords["admin"], "192.0.2.11"))
			if w.Code != http.StatusTooManyRequests {
				t.Errorf("right password after %d failures = %d, want 429", perName, w.Code)
			}
			if w.Code == http.StatusTooManyRequests && checks.Load() != before {
				t.Error("a locked login was checked")
			}
			// Other names from other addresses are not affected.
			w = httptest.NewRecorder()
			s.Handler().ServeHTTP(w, loginReq(api, "viewer", testPasswords["viewer"], "192.0.2.12"))
			if w.Code != ok[api] {
				t.Errorf("other user = %d", w.Code)
			}
		})
		t.Run(name+"/one address", func(t *testing.T) {
			s, _ := MustOpenServer(t, func(o *Options) { o.LoginLockAfter = perName })
			checks := countChecks(s)
			codes := burst(s.Handler(), 60, func(i int) *http.Request {
				return loginReq(api, "user"+string(rune('A'+i)), "guess", "192.0.2.20")
			})
			if n := checks.Load(); n != perIP {
				t.Errorf("%d passwords checked for 60 concurrent guesses from one address, want %d (%v)", n, perIP, codes)
			}
			w := httptest.NewRecorder()
			s.Handler().ServeHTTP(w, loginReq(api, "viewer", testPasswords["viewer"], "192.0.2.20"))
			if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
				t.Errorf("right password from a locked address = %d %v", w.Code, w.Header())
			}
		})
	}
}

// TestThrottleReserve drives the counters directly: attempts in flight
// count against the limit, a success frees its reservation and clears the
// name, a failure at the limit locks.
func TestThrottleReserve(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	th := newThrottle(3, time.Minute, func() time.Time { return now })
	var dones []func(attempt) bool
	for range 3 {
		d, wait := th.reserve("ana", "10.0.0.1")
		if wait != 0 {
			t.Fatal("refused below the limit")
		}
		dones = append(dones, d)
	}
	if _, wait := th.reserve("ana", "10.0.0.2"); wait == 0 {
		t.Fatal("a fourth attempt in flight was admitted")
	}
	dones[0](attemptOK) // a success frees its slot and forgets the name's failures
	d, wait := th.reserve("ana", "10.0.0.1")
	if wait != 0 {
		t.Fatal("refused after a success freed a slot")
	}
	if dones[1](attemptFailed) || dones[2](attemptFailed) {
		t.Fatal("locked below the limit")
	}
	if !d(attemptFailed) {
		t.Fatal("third failure did not lock")
	}
	d(attemptFailed) // a second call changes nothing
	if f := th.m["ip:10.0.0.1"]; f == nil || f.pending != 0 || len(f.times) != 3 {
		t.Errorf("address counters after a repeated done: %+v", f)
	}
	if _, wait := th.reserve("ana", "10.0.0.9"); wait <= 0 || wait > time.Minute {
		t.Errorf("locked name: wait %v", wait)
	}
	now = now.Add(time.Minute + time.Second)
	if _, wait := th.reserve("ana", "10.0.0.9"); wait != 0 {
		t.Errorf("lock did not expire: wait %v", wait)
	}

	// An abandoned attempt frees its slot but forgets no failure.
	th = newThrottle(3, time.Minute, func() time.Time { return now })
	for range 2 {
		d, _ := th.reserve("luis", "10.0.1.1")
		d(attemptFailed)
	}
	d, _ = th.reserve("luis", "10.0.1.1")
	d(attemptAbandoned)
	d, wait = th.reserve("luis", "10.0.1.1")
	if wait != 0 || !d(attemptFailed) {
		t.Error("an abandoned attempt reset the name's failures")
	}
}

// TestSafeNext: only same-site relative paths survive as a post-login
// redirect, whatever the encoding.
func TestSafeNext(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/files", "/files"},
		{"/broadcasts?status=sending&page=2", "/broadcasts?page=2&status=sending"},
		{"/broadcasts/12", "/broadcasts/12"},
		{"/a/../files", "/files"},
		{"", "/broadcasts"},
		{"files", "/broadcasts"},
		{"//evil.example/", "/broadcasts"},
		{"///evil.example/", "/broadcasts"},
		{"/\\evil.example", "/broadcasts"},
		{"\\\\evil.example", "/broadcasts"},
		{"/\t/evil.example", "/broadcasts"},
		{"\t//evil.example", "/broadcasts"},
		{"/\r\n/evil.example", "/broadcasts"},
		{"/\n/evil.example", "/broadcasts"},
		{"/ /evil.example", "/broadcasts"},
		{"/\x00/evil.example", "/broadcasts"},
		{"/\x7f/evil.example", "/broadcasts"},
		{"/%09/evil.example", "/broadcasts"},
		{"/%0d%0a/evil.example", "/broadcasts"},
		{"/%2F%2Fevil.example", "/broadcasts"},
		{"/%2f/evil.example", "/broadcasts"},
		{"/%5Cevil.example", "/broadcasts"},
		{"/%252F%252Fevil.example", "/broadcasts"},
		{"/%25252F%25252Fevil.example", "/broadcasts"},
		{"/files%0aSet-Cookie:x=1", "/broadcasts"},
		{"/%zz", "/broadcasts"},
		{"https://evil.example/", "/broadcasts"},
		{"http:evil.example", "/broadcasts"},
		{"HTTPS://evil.example", "/broadcasts"},
		{"javascript:alert(1)", "/broadcasts"},
		{"JaVaScRiPt:alert(1)", "/broadcasts"},
		{"%2F%2Fevil.example", "/broadcasts"},
		{"/" + strings.Repeat("a", 3000), "/broadcasts"},
	} {
		got := safeNext(tc.in)
		if got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.in, got, tc.want)
		}
		// Whatever comes out is a path a browser keeps on this site.
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") ||
			strings.ContainsAny(got, "\\\t\r\n ") {
			t.Errorf("safeNext(%q) = %q leaves the site", tc.in, got)
		}
	}
}

// TestLoginRedirectStaysOnSite: the Location after a login, for hostile
// next values on the form and carried through the login page.
func TestLoginRedirectStaysOnSite(t *testing.T) {
	s, _ := MustOpenServer(t, nil)
	for _, next := range []string{"/\t/evil.example", "/\\evil.example", "//evil.example", "/%09/evil.example",
		"/%2F%2Fevil.example", "https://evil.example", "javascript:alert(1)", "/\r\n/evil.example"} {
		form := url.Values{"username": {"viewer"}, "password": {testPasswords["viewer"]}, "next": {next}}
		c := &client{tb: t, h: s.Handler()}
		w := c.do("POST", "/login", strings.NewReader(form.Encode()), nil)
		if loc := w.Header().Get("Location"); w.Code != http.StatusSeeOther || loc != "/broadcasts" {
			t.Errorf("next=%q: %d Location %q", next, w.Code, loc)
		}
		w = c.do("GET", "/login?next="+url.QueryEscape(next), nil, nil)
		if strings.Contains(w.Body.String(), "evil.example") {
			t.Errorf("login page carries next=%q", next)
		}
	}
}

// TestMethodNotAllowed: every route answers 405 with an Allow header for
// the methods it is not routed for, on the console and the API. The table
// must cover every route the router has.
func TestMethodNotAllowed(t *testing.T) {
	s, _ := MustOpenServer(t, func(o *Options) {
		o.MetricsHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	})
	day := time.Now().In(mexico).AddDate(0, 0, -1).Format(time.DateOnly)
	getOnly, getPost := "GET, HEAD", "GET, HEAD, POST"
	routes := []struct {
		pattern, path, allow string
		api                  bool
	}{
		{"/healthz", "/healthz", getOnly, false},
		{"/readyz", "/readyz", getOnly, false},
		{"/metrics", "/metrics", getOnly, false},
		{"/static/{name}", "/static/app.css", getOnly, false},
		{"/login", "/login", getPost, false},
		{"/", "/", getOnly, false},
		{"/logout", "/logout", "POST", false},
		{"/language", "/language", "POST", false},
		{"/broadcasts", "/broadcasts", getOnly, false},
		{"/broadcasts/{id}", "/broadcasts/4", getOnly, false},
		{"/broadcasts/{id}/panel", "/broadcasts/4/panel", getPost, false},
		{"/broadcasts/{id}/row", "/broadcasts/4/row", getPost, false},
		{"/broadcasts/{id}/export.csv", "/broadcasts/4/export.csv", getPost, false},
		{"/broadcasts/{id}/{action}", "/broadcasts/4/send", "POST", false},
		{"/files", "/files", getOnly, false},
		{"/files/{id}", "/files/104", getOnly, false},
		{"/reports", "/reports", getOnly, false},
		{"/audit", "/audit", getOnly, false},
		{"/help", "/help", getOnly, false},
		{"/api/v1/audit", "/api/v1/audit", getOnly, true},
		{"/reports/{file}", "/reports/" + day + ".csv", getOnly, false},
		{"/reports/{day}/push", "/reports/" + day + "/push", "POST", false},
		{"/api/v1/broadcasts", "/api/v1/broadcasts", getOnly, true},
		{"/api/v1/broadcasts/{id}", "/api/v1/broadcasts/4", "GET, HEAD, DELETE", true},
		{"/api/v1/broadcasts/{id}/messages.csv", "/api/v1/broadcasts/4/messages.csv", getPost, true},
		{"/api/v1/broadcasts/{id}/{action}", "/api/v1/broadcasts/4/send", "POST", true},
		{"/api/v1/files", "/api/v1/files", getOnly, true},
		{"/api/v1/files/{id}", "/api/v1/files/104", getOnly, true},
		{"/api/v1/files/{id}/errors", "/api/v1/files/104/errors", getOnly, true},
		{"/api/v1/reports", "/api/v1/reports", getOnly, true},
		{"/api/v1/reports/{file}", "/api/v1/reports/" + day + ".csv", getOnly, true},
		{"/api/v1/reports/{day}/push", "/api/v1/reports/" + day + "/push", "POST", true},
		{"/suppressions", "/suppressions", getPost, false},
		{"/suppressions/export.csv", "/suppressions/export.csv", getOnly, false},
		{"/suppressions/import", "/suppressions/import", "POST", false},
		{"/suppressions/remove", "/suppressions/remove", "POST", false},
		{"/replies", "/replies", getOnly, false},
		{"/api/v1/suppressions", "/api/v1/suppressions", getPost, true},
		{"/api/v1/suppressions.csv", "/api/v1/suppressions.csv", getOnly, true},
		{"/api/v1/suppressions/{number}", "/api/v1/suppressions/5512345678", "DELETE", true},
		{"/api/v1/replies", "/api/v1/replies", getOnly, true},
	}
	covered := map[string]bool{}
	for _, rt := range routes {
		covered[rt.pattern] = true
	}
	err := chi.Walk(s.router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if route = strings.TrimSuffix(route, "/*"); route == "" {
			route = "/"
		}
		if !covered[route] {
			t.Errorf("route %s %s is not in the table", method, route)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	admin := login(t, s.Handler(), "admin")
	for _, rt := range routes {
		allow := strings.Split(rt.allow, ", ")
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"} {
			if slices.Contains(allow, m) {
				continue
			}
			t.Run(m+" "+rt.path, func(t *testing.T) {
				var w *httptest.ResponseRecorder
				if rt.api {
					w = apiReq(t, s.Handler(), m, rt.path, "admin", "")
				} else {
					w = admin.do(m, rt.path, nil, map[string]string{"X-CSRF-Token": admin.csrf})
				}
				if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != rt.allow {
					t.Errorf("%s %s = %d Allow %q, want 405 Allow %q", m, rt.path, w.Code, w.Header().Get("Allow"), rt.allow)
				}
				if m != "HEAD" && rt.api && !strings.Contains(w.Body.String(), `"error"`) {
					t.Errorf("API 405 body %q", w.Body)
				}
			})
		}
	}
	// Without credentials the console still says 405, the API asks for them.
	if w := apiReq(t, s.Handler(), "PATCH", "/api/v1/files", "", ""); w.Code != http.StatusUnauthorized {
		t.Errorf("PATCH API without auth = %d", w.Code)
	}
	if w := (&client{tb: t, h: s.Handler()}).do("PUT", "/broadcasts/4", nil, nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT console without session = %d", w.Code)
	}
}

// TestAPIConcurrentGoodCredentials: a script's concurrent calls with
// credentials just proven are not guesses: they pass without a bcrypt and
// without using up the limits; a lock still stops them.
func TestAPIConcurrentGoodCredentials(t *testing.T) {
	s, _ := MustOpenServer(t, func(o *Options) { o.LoginLockAfter = 5 })
	checks := countChecks(s)
	h := s.Handler()
	good := func(int) *http.Request { return loginReq(true, "operator", testPasswords["operator"], "192.0.2.30") }
	if codes := burst(h, 1, good); codes[200] != 1 {
		t.Fatalf("first call: %v", codes)
	}
	if codes := burst(h, 40, good); codes[200] != 40 || checks.Load() != 1 {
		t.Errorf("40 concurrent good calls: %v, %d checks", codes, checks.Load())
	}
	burst(h, 40, func(int) *http.Request { return loginReq(true, "operator", "guess", "192.0.2.31") })
	if codes := burst(h, 3, good); codes[http.StatusTooManyRequests] != 3 {
		t.Errorf("good calls while the name is locked: %v", codes)
	}
}
