package webui

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"campaignd"
)

var testPasswords = map[string]string{"admin": "admin-secret", "operator": "operator-secret", "viewer": "viewer-secret"}

func testUsers(tb testing.TB) []User {
	tb.Helper()
	var users []User
	for _, name := range []string{"admin", "operator", "viewer"} {
		h, err := bcrypt.GenerateFromPassword([]byte(testPasswords[name]), bcrypt.MinCost)
		if err != nil {
			tb.Fatal(err)
		}
		users = append(users, User{Name: name, PasswordHash: string(h), Role: campaignd.Role(name)})
	}
	return users
}

var mexico = func() *time.Location {
	loc, err := time.LoadLocation("America/Mexico_City")
	if err != nil {
		return time.FixedZone("CST", -6*3600)
	}
	return loc
}()

// MustOpenServer returns a Server over a fresh fake backend.
func MustOpenServer(tb testing.TB, edit func(*Options)) (*Server, *fakeBackend) {
	tb.Helper()
	fake := newFake(time.Now().In(mexico))
	o := Options{
		Listen: "127.0.0.1:0", Users: testUsers(tb), Location: mexico, Backend: fake,
		LoginDelay: time.Millisecond, LoginLockAfter: 3, LoginLockFor: time.Minute,
		Language: "en", // the tests read English; i18n_test.go covers Spanish
	}
	if edit != nil {
		edit(&o)
	}
	s, err := New(o)
	if err != nil {
		tb.Fatal(err)
	}
	return s, fake
}

// client drives the handler directly with cookies and a CSRF token.
type client struct {
	tb     testing.TB
	h      http.Handler
	cookie *http.Cookie
	csrf   string
}

func (c *client) do(method, target string, body io.Reader, hdr map[string]string) *httptest.ResponseRecorder {
	c.tb.Helper()
	r := httptest.NewRequest(method, target, body)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	if body != nil && r.Header.Get("Content-Type") == "" {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.cookie != nil {
		r.AddCookie(c.cookie)
	}
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	return w
}

// post sends a console form with the CSRF token, as htmx would.
func (c *client) post(target string, form url.Values) *httptest.ResponseRecorder {
	c.tb.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", c.csrf)
	return c.do("POST", target, strings.NewReader(form.Encode()), map[string]string{"HX-Request": "true"})
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// login signs in through the form and picks up the CSRF token of a page.
func login(tb testing.TB, h http.Handler, user string) *client {
	tb.Helper()
	c := &client{tb: tb, h: h}
	form := url.Values{"username": {user}, "password": {testPasswords[user]}}
	w := c.do("POST", "/login", strings.NewReader(form.Encode()), nil)
	if w.Code != http.StatusSeeOther {
		tb.Fatalf("login %s: status %d: %s", user, w.Code, w.Body)
	}
	for _, ck := range w.Result().Cookies() {
		c.cookie = ck
	}
	page := c.do("GET", "/broadcasts", nil, nil)
	m := csrfMeta.FindStringSubmatch(page.Body.String())
	if m == nil {
		tb.Fatalf("no csrf meta in page: %s", page.Body)
	}
	c.csrf = m[1]
	return c
}

func apiReq(tb testing.TB, h http.Handler, method, target, user, body string) *httptest.ResponseRecorder {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	if user != "" {
		pw := testPasswords[user]
		if pw == "" {
			pw = "wrong"
		}
		r.SetBasicAuth(strings.TrimSuffix(user, "!"), pw)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestNew(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without a backend: no error")
	}
	_, err := New(Options{Backend: newFake(time.Now()), Users: []User{{Name: "x", Role: "boss"}}})
	if err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("bad role: err = %v", err)
	}
	if _, err := New(Options{Backend: newFake(time.Now()), BaseURL: "not a url"}); err == nil {
		t.Error("bad base URL: no error")
	}
}

func TestHealthAndReady(t *testing.T) {
	s, fake := MustOpenServer(t, nil)
	h := s.Handler()
	c := &client{tb: t, h: h}
	if w := c.do("GET", "/healthz", nil, nil); w.Code != 200 {
		t.Errorf("healthz = %d", w.Code)
	}
	if w := c.do("HEAD", "/healthz", nil, nil); w.Code != 200 {
		t.Errorf("HEAD healthz = %d", w.Code)
	}
	w := c.do("GET", "/readyz", nil, nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"smsc": "bound"`) {
		t.Errorf("readyz = %d %s", w.Code, w.Body)
	}
	fake.ready = false
	w = c.do("GET", "/readyz", nil, nil)
	if w.Code != 503 || !strings.Contains(w.Body.String(), "listener closed") {
		t.Errorf("readyz not ready = %d %s", w.Code, w.Body)
	}
}

func TestSecurityHeaders(t *testing.T) {
	s, _ := MustOpenServer(t, func(o *Options) { o.TLS = true })
	c := &client{tb: t, h: s.Handler()}
	for _, path := range []string{"/login", "/api/v1/broadcasts", "/healthz", "/nope"} {
		w := c.do("GET", path, nil, nil)
		h := w.Header()
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP allows unsafe: %q", path, csp)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
			"Referrer-Policy": "same-origin", "Strict-Transport-Security": "max-age=31536000; includeSubDomains"} {
			if h.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", path, k, h.Get(k), v)
			}
		}
	}
}

func TestStaticFiles(t *testing.T) {
	s, _ := MustOpenServer(t, nil)
	c := &client{tb: t, h: s.Handler()}
	page := c.do("GET", "/login", nil, nil).Body.String()
	m := regexp.MustCompile(`src="(/static/htmx-4\.0\.1\.[0-9a-f]{8}\.min\.js)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no hashed htmx script in login page:\n%s", page)
	}
	w := c.do("GET", m[1], nil, nil)
	if w.Code != 200 || !strings.Contains(w.Header().Get("Cache-Control"), "immutable") ||
		!strings.HasPrefix(w.Header().Get("Content-Type"), "text/javascript") {
		t.Errorf("htmx: %d %v", w.Code, w.Header())
	}
	if w := c.do("GET", "/static/htmx-4.0.1.min.js", nil, nil); w.Code != 404 {
		t.Errorf("unhashed name = %d, want 404", w.Code)
	}
	if strings.Contains(page, " on") && regexp.MustCompile(`\son[a-z]+=`).MatchString(page) {
		t.Error("inline event handler in page")
	}
}

func TestLogin(t *testing.T) {
	for _, tls := range []bool{false, true} {
		s, fake := MustOpenServer(t, func(o *Options) { o.TLS = tls })
		c := &client{tb: t, h: s.Handler()}
		form := url.Values{"username": {"operator"}, "password": {"operator-secret"}, "next": {"/files"}}
		w := c.do("POST", "/login", strings.NewReader(form.Encode()), nil)
		if w.Code != 303 || w.Header().Get("Location") != "/files" {
			t.Fatalf("login: %d %v", w.Code, w.Header())
		}
		ck := w.Result().Cookies()[0]
		wantName := "campaignd_session"
		if tls {
			wantName = "__Host-campaignd"
		}
		if ck.Name != wantName || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Secure != tls || ck.Path != "/" {
			t.Errorf("tls=%v: cookie %+v", tls, ck)
		}
		if len(fake.sessions) != 1 || fake.sessions[ck.Value].CSRFToken == "" {
			t.Errorf("session not stored with a CSRF token: %+v", fake.sessions)
		}
		// An open redirect is refused.
		form.Set("next", "//evil.example/")
		if w := c.do("POST", "/login", strings.NewReader(form.Encode()), nil); w.Header().Get("Location") != "/broadcasts" {
			t.Errorf("next=//evil: Location %q", w.Header().Get("Location"))
		}
		// Logout needs the CSRF token, then ends the session.
		c = login(t, s.Handler(), "operator")
		if w := c.do("POST", "/logout", nil, nil); w.Code != 403 {
			t.Errorf("logout without token = %d", w.Code)
		}
		if w := c.post("/logout", nil); w.Code != 303 {
			t.Errorf("logout = %d", w.Code)
		}
		if w := c.do("GET", "/broadcasts", nil, nil); w.Code != 303 || !strings.HasPrefix(w.Header().Get("Location"), "/login") {
			t.Errorf("after logout: %d %v", w.Code, w.Header())
		}
	}
}

func TestLoginThrottle(t *testing.T) {
	s, _ := MustOpenServer(t, func(o *Options) { o.LoginDelay = 30 * time.Millisecond })
	c := &client{tb: t, h: s.Handler()}
	try := func(user, pw string) *httptest.ResponseRecorder {
		form := url.Values{"username": {user}, "password": {pw}}
		return c.do("POST", "/login", strings.NewReader(form.Encode()), nil)
	}
	start := time.Now()
	w := try("admin", "guess")
	if w.Code != 401 || !strings.Contains(w.Body.String(), "Wrong user name or password") {
		t.Fatalf("wrong password: %d %s", w.Code, w.Body)
	}
	if time.Since(start) < 30*time.Millisecond {
		t.Error("a failed login was not delayed")
	}
	try("admin", "guess")
	try("admin", "guess") // third failure locks the name
	w = try("admin", "admin-secret")
	if w.Code != 429 || !strings.Contains(w.Body.String(), "Too many failed logins") || w.Header().Get("Retry-After") == "" {
		t.Errorf("locked login: %d %v %s", w.Code, w.Header(), w.Body)
	}
	// The API shares the throttle.
	if w := apiReq(t, s.Handler(), "GET", "/api/v1/broadcasts", "admin", ""); w.Code != 429 {
		t.Errorf("API while locked = %d", w.Code)
	}
	// Another user from another address is not affected.
	r := httptest.NewRequest("POST", "/login", strings.NewReader("username=viewer&password=viewer-secret"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = "198.51.100.9:4000"
	rw := httptest.NewRecorder()
	s.Handler().ServeHTTP(rw, r)
	if rw.Code != 303 {
		t.Errorf("other user = %d", rw.Code)
	}
	// Many names from one address lock the address.
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"} {
		try(n, "x")
	}
	if w := try("operator", "operator-secret"); w.Code != 429 {
		t.Errorf("address locked: %d", w.Code)
	}
}

func TestConsoleNeedsSession(t *testing.T) {
	s, _ := MustOpenServer(t, nil)
	c := &client{tb: t, h: s.Handler()}
	w := c.do("GET", "/broadcasts/4", nil, nil)
	if w.Code != 303 || w.Header().Get("Location") != "/login?next=%2Fbroadcasts%2F4" {
		t.Errorf("no session: %d %v", w.Code, w.Header())
	}
	w = c.do("GET", "/broadcasts/2/panel", nil, map[string]string{"HX-Request": "true"})
	if w.Code != 401 || w.Header().Get("HX-Redirect") != "/login" {
		t.Errorf("htmx no session: %d %v", w.Code, w.Header())
	}
	c.cookie = &http.Cookie{Name: "campaignd_session", Value: "forged"}
	if w := c.do("GET", "/files", nil, nil); w.Code != 303 {
		t.Errorf("forged session: %d", w.Code)
	}
	if w := c.do("POST", "/broadcasts/4/send", nil, nil); w.Code != 303 {
		t.Errorf("forged session POST: %d", w.Code)
	}
}

func TestConsolePages(t *testing.T) {
	s, _ := MustOpenServer(t, nil)
	admin := login(t, s.Handler(), "admin")
	viewer := login(t, s.Handler(), "viewer")
	for _, tc := range []struct {
		name, path string
		want       []string
		actions    []string // shown to admin, hidden from viewer
	}{
		{"list", "/broadcasts", []string{"Broadcasts by File", "Promo Fin de Semana", "promo_fin_semana.csv", `hx-get="/broadcasts/2/row"`}, nil},
		{"filter", "/broadcasts?status=pending", []string{"Bienvenida Nuevos Socios", "Encuesta"}, nil},
		{"pending", "/broadcasts/4", []string{"On Date", "Send Now", "Hola Ana", "GSM-7", "Total segments", "55-1234", "invalid recipient"}, []string{`id="btn-send"`, `id="btn-schedule"`, `id="btn-delete"`, `name="at"`}},
		{"scheduled", "/broadcasts/3", []string{"Recordatorio", "UCS-2"}, []string{`Change date`, `id="btn-send"`, `id="btn-delete"`}},
		{"sending", "/broadcasts/2", []string{`id="c-submitted"`, `id="c-remaining"`, `id="rate"`, `id="eta"`, `hx-trigger="every 2s"`}, []string{`id="btn-pause"`}},
		{"paused", "/broadcasts/5", []string{"paused"}, []string{`id="btn-resume"`, `id="btn-cancel"`}},
		{"completed", "/broadcasts/1", []string{"Results by final status", "Export CSV", "1,104", "admin"}, nil},
		{"files", "/files", []string{"lista_rota.csv", "rejected", "no message column"}, nil},
		{"reports", "/reports", []string{"connection refused", "Download today (partial)", "failed"}, []string{"Push again"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := admin.do("GET", tc.path, nil, nil)
			body := w.Body.String()
			if w.Code != 200 {
				t.Fatalf("admin GET %s = %d: %s", tc.path, w.Code, body)
			}
			for _, s := range append(tc.want, tc.actions...) {
				if !strings.Contains(body, s) {
					t.Errorf("admin %s: missing %q", tc.path, s)
				}
			}
			vb := viewer.do("GET", tc.path, nil, nil).Body.String()
			for _, s := range tc.actions {
				if strings.Contains(vb, s) {
					t.Errorf("viewer %s: shows %q", tc.path, s)
				}
			}
			if strings.Contains(vb, "hx-post") {
				t.Errorf("viewer %s: page has an action form", tc.path)
			}
		})
	}
	for path, code := range map[string]int{"/broadcasts/999": 404, "/broadcasts/x": 404, "/broadcasts?status=bogus": 400, "/broadcasts?page=0": 400, "/nope": 404} {
		if w := admin.do("GET", path, nil, nil); w.Code != code {
			t.Errorf("GET %s = %d, want %d", path, w.Code, code)
		}
	}
}

func TestConsoleActions(t *testing.T) {
	s, fake := MustOpenServer(t, nil)
	h := s.Handler()
	op := login(t, h, "operator")
	viewer := login(t, h, "viewer")
	futureT := time.Now().In(mexico).Add(48 * time.Hour)
	future := futureT.Format(inputLayout)
	past := time.Now().In(mexico).Add(-time.Hour).Format(inputLayout)

	// Viewers are refused every action, and nothing changes.
	for _, a := range []string{"send", "schedule", "pause", "resume", "cancel", "delete"} {
		w := viewer.post("/broadcasts/4/"+a, url.Values{"at": {future}})
		if w.Code != 403 || !strings.Contains(w.Body.String(), "Your role may view") || w.Header().Get("HX-Retarget") != "#flash" {
			t.Errorf("viewer %s: %d %v %s", a, w.Code, w.Header(), w.Body)
		}
	}
	if w := viewer.post("/reports/"+time.Now().In(mexico).Format(time.DateOnly)+"/push", nil); w.Code != 403 {
		t.Errorf("viewer push = %d", w.Code)
	}
	if len(fake.audit[4]) != 0 || len(fake.pushes) != 0 {
		t.Fatalf("viewer actions reached the backend: %v %v", fake.audit[4], fake.pushes)
	}

	for _, tc := range []struct {
		name, path string
		form       url.Values
		code       int
		want       string
	}{
		{"no date", "/broadcasts/4/schedule", nil, 400, "Choose a date"},
		{"bad date", "/broadcasts/4/schedule", url.Values{"at": {"tomorrow"}}, 400, "Invalid date"},
		{"past date", "/broadcasts/4/schedule", url.Values{"at": {past}}, 400, "not in the future"},
		{"schedule", "/broadcasts/4/schedule", url.Values{"at": {future}}, 200, "Scheduled for " + futureT.Format("02 Jan 2006 15:04")},
		{"change date as written", "/broadcasts/4/schedule", url.Values{"at": {futureT.Format("2/1/2006 15:04")}}, 200, "Scheduled for " + futureT.Format("02 Jan 2006 15:04")},
		{"change date", "/broadcasts/4/schedule", url.Values{"at": {future}}, 200, "Change date"},
		{"send now", "/broadcasts/4/send", nil, 200, "Sending started"},
		{"send again", "/broadcasts/4/send", nil, 409, "This page was out of date: the broadcast is now sending, so it cannot be sent."},
		{"pause", "/broadcasts/4/pause", nil, 200, "Paused"},
		{"resume", "/broadcasts/4/resume", nil, 200, "Resumed"},
		{"delete sending", "/broadcasts/4/delete", nil, 409, "so it cannot be deleted"},
		{"delete pending", "/broadcasts/6/delete", nil, 200, "deleted"},
		{"deleted is gone", "/broadcasts/6/send", nil, 404, "not found"},
		{"unknown id", "/broadcasts/999/send", nil, 404, "not found"},
		{"unknown action", "/broadcasts/4/explode", nil, 404, "No action"},
		{"cancel paused", "/broadcasts/5/cancel", nil, 200, "Cancelled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := op.post(tc.path, tc.form)
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
				t.Fatalf("POST %s = %d, want %d with %q:\n%s", tc.path, w.Code, tc.code, tc.want, w.Body)
			}
			if tc.code == 409 {
				// A stale page gets the fresh panel with the reason.
				if b := w.Body.String(); !strings.Contains(b, `id="panel"`) || !strings.Contains(b, `hx-swap-oob="true"`) {
					t.Errorf("refused action without the fresh panel: %s", b)
				}
			} else if tc.code >= 400 && w.Header().Get("HX-Retarget") != "#flash" {
				t.Errorf("error not retargeted to #flash: %v", w.Header())
			}
			if tc.code == 200 && !strings.Contains(w.Body.String(), `hx-swap-oob="true"`) {
				t.Errorf("no out-of-band flash/audit: %s", w.Body)
			}
		})
	}
	// The audit trail records who acted and from where.
	if a := fake.audit[4]; len(a) != 6 || a[0].User != "operator" || a[0].RemoteAddr != "192.0.2.1" {
		t.Errorf("audit = %+v", a)
	}
	// Polling a deleted broadcast stops: the row goes, the panel says so.
	if w := op.do("GET", "/broadcasts/6/row", nil, map[string]string{"HX-Request": "true"}); w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("row of deleted: %d %q", w.Code, w.Body)
	}
	if w := op.do("GET", "/broadcasts/6/panel", nil, map[string]string{"HX-Request": "true"}); w.Code != 200 ||
		!strings.Contains(w.Body.String(), "no longer exists") || strings.Contains(w.Body.String(), "hx-trigger") {
		t.Errorf("panel of deleted: %d %q", w.Code, w.Body)
	}
	// Without htmx, an action redirects back to the page.
	form := url.Values{"csrf": {op.csrf}}
	w := op.do("POST", "/broadcasts/4/pause", strings.NewReader(form.Encode()), nil)
	if w.Code != 303 || w.Header().Get("Location") != "/broadcasts/4" {
		t.Errorf("plain form: %d %v", w.Code, w.Header())
	}
	// Reports: push again.
	day := time.Now().In(mexico).AddDate(0, 0, -1).Format(time.DateOnly)
	w = op.post("/reports/"+day+"/push", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "push pushed") || len(fake.pushes) != 1 {
		t.Errorf("push: %d %s %v", w.Code, w.Body, fake.pushes)
	}
	if w := op.post("/reports/2099-01-01/push", nil); w.Code != 404 {
		t.Errorf("push future day = %d", w.Code)
	}
}

func TestCSRF(t *testing.T) {
	s, fake := MustOpenServer(t, nil)
	h := s.Handler()
	op := login(t, h, "operator")
	for name, hdr := range map[string]map[string]string{
		"missing": {"HX-Request": "true"},
		"wrong":   {"HX-Request": "true", "X-CSRF-Token": "nope"},
	} {
		w := op.do("POST", "/broadcasts/4/send", strings.NewReader(""), hdr)
		if w.Code != 403 || !strings.Contains(w.Body.String(), "CSRF") {
			t.Errorf("%s token: %d %s", name, w.Code, w.Body)
		}
	}
	// Another session's token does not do.
	other := login(t, h, "admin")
	if w := op.do("POST", "/broadcasts/4/send", strings.NewReader(""), map[string]string{"X-CSRF-Token": other.csrf}); w.Code != 403 {
		t.Errorf("other session's token = %d", w.Code)
	}
	// A cross-origin request is refused even with a valid token.
	w := op.do("POST", "/broadcasts/4/send", strings.NewReader(""), map[string]string{"X-CSRF-Token": op.csrf, "Sec-Fetch-Site": "cross-site"})
	if w.Code != 403 || !strings.Contains(w.Body.String(), "Cross-origin") {
		t.Errorf("cross-origin: %d %s", w.Code, w.Body)
	}
	w = op.do("POST", "/broadcasts/4/send", strings.NewReader(""), map[string]string{"X-CSRF-Token": op.csrf, "Origin": "https://evil.example"})
	if w.Code != 403 {
		t.Errorf("cross-origin by Origin: %d", w.Code)
	}
	if len(fake.audit[4]) != 0 {
		t.Fatalf("refused requests acted: %v", fake.audit[4])
	}
	// The header alone (as app.js sends it) is accepted.
	w = op.do("POST", "/broadcasts/4/send", strings.NewReader(""), map[string]string{"X-CSRF-Token": op.csrf, "HX-Request": "true", "Sec-Fetch-Site": "same-origin"})
	if w.Code != 200 {
		t.Errorf("header token: %d %s", w.Code, w.Body)
	}
	// The login form is protected against cross-origin posts too.
	w = (&client{tb: t, h: h}).do("POST", "/login", strings.NewReader("username=admin&password=admin-secret"), map[string]string{"Sec-Fetch-Site": "cross-site"})
	if w.Code != 403 {
		t.Errorf("cross-origin login: %d", w.Code)
	}
}

func TestExportCSV(t *testing.T) {
	s, _ := MustOpenServer(t, nil)
	viewer := login(t, s.Handler(), "viewer")
	w := viewer.do("GET", "/broadcasts/1/export.csv", nil, nil)
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/csv; charset=utf-8" ||
		!strings.Contains(w.Header().Get("Content-Disposition"), "broadcast-1-messages.csv") {
		t.Fatalf("export: %d %v", w.Code, w.Header())
	}
	lines := strings.Split(strings.TrimSpace(w.Body.String()), "\n")
	if lines[0] != "Tracking ID,Recipient,Recipient (as written),Member ID,Message,Encoding,Segments,Status,Error Code,SMSC IDs,Submitted At,Settled At" {
		t.Errorf("header = %q", lines[0])
	}
	if len(lines) != 1201 || !strings.HasPrefix(lines[1], "100000,525510001000,55 1000 1000,5800000001,") || !strings.Contains(lines[1], "DELIVRD") {
		t.Errorf("%d lines; first row %q", len(lines), lines[1])
	}
	if w := viewer.do("GET", "/broadcasts/999/export.csv", nil, nil); w.Code != 404 {
		t.Errorf("export unknown = %d", w.Code)
	}
}

func TestAPI(t *testing.T) {
	s, fake := MustOpenServer(t, nil)
	h := s.Handler()
	future := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	yesterday := time.Now().In(mexico).AddDate(0, 0, -1).Format(time.DateOnly)
	for _, tc := range []struct {
		name, method, path, user, body string
		code                           int
		want                           string
	}{
		{"no auth", "GET", "/api/v1/broadcasts", "", "", 401, `"error": "HTTP Basic authentication required."`},
		{"bad password", "GET", "/api/v1/broadcasts", "admin!", "", 401, "Wrong user name or password"},
		{"list", "GET", "/api/v1/broadcasts", "viewer", "", 200, `"total": 7`},
		{"filter", "GET", "/api/v1/broadcasts?status=pending", "viewer", "", 200, `"total": 2`},
		{"bad filter", "GET", "/api/v1/broadcasts?status=done", "viewer", "", 400, "Unknown status"},
		{"bad limit", "GET", "/api/v1/broadcasts?limit=0", "viewer", "", 400, "Invalid limit"},
		{"get", "GET", "/api/v1/broadcasts/4", "viewer", "", 200, `"status": "pending"`},
		{"get 404", "GET", "/api/v1/broadcasts/999", "viewer", "", 404, "not found"},
		{"get bad id", "GET", "/api/v1/broadcasts/abc", "viewer", "", 404, "No broadcast"},
		{"viewer send", "POST", "/api/v1/broadcasts/4/send", "viewer", "", 403, "Your role"},
		{"viewer schedule", "POST", "/api/v1/broadcasts/4/schedule", "viewer", `{"at":"` + future + `"}`, 403, "Your role"},
		{"viewer pause", "POST", "/api/v1/broadcasts/2/pause", "viewer", "", 403, "Your role"},
		{"viewer resume", "POST", "/api/v1/broadcasts/5/resume", "viewer", "", 403, "Your role"},
		{"viewer cancel", "POST", "/api/v1/broadcasts/5/cancel", "viewer", "", 403, "Your role"},
		{"viewer delete", "DELETE", "/api/v1/broadcasts/4", "viewer", "", 403, "Your role"},
		{"viewer push", "POST", "/api/v1/reports/" + yesterday + "/push", "viewer", "", 403, "Your role"},
		{"schedule no body", "POST", "/api/v1/broadcasts/4/schedule", "operator", "", 400, `Missing \"at\"`},
		{"schedule bad json", "POST", "/api/v1/broadcasts/4/schedule", "operator", `{"at":`, 400, "Body must be"},
		{"schedule bad date", "POST", "/api/v1/broadcasts/4/schedule", "operator", `{"at":"2026-13-01 10:00"}`, 400, "use RFC 3339"},
		{"schedule past", "POST", "/api/v1/broadcasts/4/schedule", "operator", `{"at":"` + past + `"}`, 400, "not in the future"},
		{"schedule", "POST", "/api/v1/broadcasts/4/schedule", "operator", `{"at":"` + future + `"}`, 200, `"scheduled_at": "` + future + `"`},
		{"send", "POST", "/api/v1/broadcasts/4/send", "operator", "", 200, `"status": "sending"`},
		{"send conflict", "POST", "/api/v1/broadcasts/4/send", "operator", "", 409, "Cannot send a broadcast that is sending."},
		{"pause", "POST", "/api/v1/broadcasts/4/pause", "admin", "", 200, `"status": "paused"`},
		{"resume", "POST", "/api/v1/broadcasts/4/resume", "admin", "", 200, `"status": "sending"`},
		{"cancel conflict", "POST", "/api/v1/broadcasts/4/cancel", "admin", "", 409, "Cannot cancel"},
		{"delete via POST", "POST", "/api/v1/broadcasts/6/delete", "admin", "", 404, "No action"},
		{"unknown action", "POST", "/api/v1/broadcasts/6/explode", "admin", "", 404, "No action"},
		{"delete conflict", "DELETE", "/api/v1/broadcasts/4", "admin", "", 409, "Cannot delete"},
		{"delete", "DELETE", "/api/v1/broadcasts/6", "admin", "", 204, ""},
		{"delete gone", "DELETE", "/api/v1/broadcasts/6", "admin", "", 404, "not found"},
		{"action 404", "POST", "/api/v1/broadcasts/999/pause", "admin", "", 404, "not found"},
		{"messages", "GET", "/api/v1/broadcasts/7/messages.csv", "viewer", "", 200, "Tracking ID,Recipient,"},
		{"messages 404", "GET", "/api/v1/broadcasts/999/messages.csv", "viewer", "", 404, "not found"},
		{"files", "GET", "/api/v1/files", "viewer", "", 200, `"outcome": "rejected"`},
		{"reports", "GET", "/api/v1/reports", "viewer", "", 200, `"push_state": "failed"`},
		{"report csv", "GET", "/api/v1/reports/" + yesterday + ".csv", "viewer", "", 200, campaignd.ReportHeader},
		{"report bad day", "GET", "/api/v1/reports/yesterday.csv", "viewer", "", 404, "YYYY-MM-DD"},
		{"report future", "GET", "/api/v1/reports/2099-01-01.csv", "viewer", "", 404, "not come yet"},
		{"report no ext", "GET", "/api/v1/reports/" + yesterday, "viewer", "", 404, "No report"},
		{"push", "POST", "/api/v1/reports/" + yesterday + "/push", "operator", "", 200, `"push_state": "pushed"`},
		{"push bad day", "POST", "/api/v1/reports/2024-02-30/push", "operator", "", 404, "YYYY-MM-DD"},
		{"method", "PUT", "/api/v1/broadcasts/4", "admin", "", 405, "not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := apiReq(t, h, tc.method, tc.path, tc.user, tc.body)
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
				t.Fatalf("%s %s = %d, want %d with %q:\n%s", tc.method, tc.path, w.Code, tc.code, tc.want, w.Body)
			}
			if tc.code >= 400 && !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
				t.Errorf("error content type %q", w.Header().Get("Content-Type"))
			}
			if tc.code == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	if a := fake.audit[4]; len(a) == 0 || a[0].User != "operator" {
		t.Errorf("API actions not audited as their user: %+v", a)
	}
}

func TestAPIIgnoresSessionCookie(t *testing.T) {
	s, fake := MustOpenServer(t, nil)
	op := login(t, s.Handler(), "operator")
	for _, tc := range []struct{ method, path string }{{"GET", "/api/v1/broadcasts"}, {"POST", "/api/v1/broadcasts/4/send"}, {"DELETE", "/api/v1/broadcasts/4"}} {
		w := op.do(tc.method, tc.path, nil, map[string]string{"X-CSRF-Token": op.csrf})
		if w.Code != 401 {
			t.Errorf("%s %s with a session cookie = %d, want 401", tc.method, tc.path, w.Code)
		}
	}
	if len(fake.audit[4]) != 0 {
		t.Error("a cookie acted through the API")
	}
	// A browser's cross-origin POST with cached Basic credentials is refused.
	r := httptest.NewRequest("POST", "/api/v1/broadcasts/4/send", nil)
	r.SetBasicAuth("operator", "operator-secret")
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	if w.Code != 403 || !strings.Contains(w.Body.String(), `"error"`) {
		t.Errorf("cross-origin API POST = %d %s", w.Code, w.Body)
	}
}

func TestBroadcastJSON(t *testing.T) {
	s, _ := MustOpenServer(t, nil)
	w := apiReq(t, s.Handler(), "GET", "/api/v1/broadcasts/4", "viewer", "")
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "name", "file_name", "sender", "status", "created_at", "scheduled_at", "counts"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %s", k, w.Body)
		}
	}
	if m["scheduled_at"] != nil {
		t.Errorf("pending scheduled_at = %v, want null", m["scheduled_at"])
	}
	if _, err := time.Parse(time.RFC3339, m["created_at"].(string)); err != nil {
		t.Errorf("created_at: %v", err)
	}
	counts := m["counts"].(map[string]any)
	for _, k := range []string{"total", "invalid", "duplicate", "queued", "submitted", "delivered", "failed", "unknown", "cancelled"} {
		if _, ok := counts[k]; !ok {
			t.Errorf("counts lacks %q", k)
		}
	}
}

func TestServerOpenClose(t *testing.T) {
	s, _ := MustOpenServer(t, nil)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz = %d", resp.StatusCode)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}
