package webui

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"campaignd"
)

// fakeSuppressions is an in-memory SuppressionBackend.
type fakeSuppressions struct {
	mu    sync.Mutex
	list  map[string]campaignd.Suppression
	audit []campaignd.AuditEntry
	mos   []campaignd.MO
}

func newFakeSuppressions() *fakeSuppressions {
	f := &fakeSuppressions{list: map[string]campaignd.Suppression{}}
	at := time.Date(2026, 11, 30, 9, 15, 0, 0, time.UTC)
	for i, text := range []string{"BAJA", "¿Cuándo llegan mis puntos?", "Stop por favor"} {
		kw := ""
		if i != 1 {
			kw = strings.Fields(strings.ToUpper(text))[0]
		}
		f.mos = append(f.mos, campaignd.MO{ID: uint64(i + 1), From: "52550000000" + string(rune('1'+i)), To: "28776", Text: text, At: at.Add(time.Duration(i) * time.Minute), Keyword: kw})
	}
	return f
}

func (f *fakeSuppressions) NormalizeNumber(raw string) (string, error) {
	d := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		if r == ' ' || r == '-' || r == '+' {
			return -1
		}
		return 'x'
	}, strings.TrimSpace(raw))
	switch {
	case len(d) == 10 && !strings.Contains(d, "x"):
		return "52" + d, nil
	case len(d) == 12 && strings.HasPrefix(d, "52") && !strings.Contains(d, "x"):
		return d, nil
	}
	return "", campaignd.Errorf(campaignd.EINVALID, "Invalid number %q: use 10 digits.", raw)
}

func (f *fakeSuppressions) Suppressions(_ context.Context, prefix, after string, limit int) ([]campaignd.Suppression, string, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var keys []string
	for k := range f.list {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	next := ""
	if len(keys) > limit {
		keys = keys[:limit]
		next = keys[limit-1]
	}
	out := make([]campaignd.Suppression, len(keys))
	for i, k := range keys {
		out[i] = f.list[k]
	}
	return out, next, len(f.list), nil
}

func (f *fakeSuppressions) Suppress(_ context.Context, ss []campaignd.Suppression, a campaignd.AuditEntry) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, s := range ss {
		if _, ok := f.list[s.Number]; !ok {
			f.list[s.Number] = s
			n++
		}
	}
	f.audit = append(f.audit, a)
	return n, nil
}

func (f *fakeSuppressions) ImportSuppressions(_ context.Context, r io.Reader, entry campaignd.Suppression, a campaignd.AuditEntry) (*SuppressImport, error) {
	res := &SuppressImport{}
	var ss []campaignd.Suppression
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		n, err := f.NormalizeNumber(sc.Text())
		if err != nil {
			res.Invalid++
			res.Errors = append(res.Errors, campaignd.FileError{Line: line, Value: sc.Text(), Error: campaignd.RowInvalidRecipient})
			continue
		}
		s := entry
		s.Number = n
		ss = append(ss, s)
		res.Valid++
	}
	if res.Valid == 0 {
		return nil, campaignd.Errorf(campaignd.EINVALID, "No valid number.")
	}
	var err error
	res.Added, err = f.Suppress(context.Background(), ss, a)
	return res, err
}

func (f *fakeSuppressions) Unsuppress(_ context.Context, number string, a campaignd.AuditEntry) (*campaignd.Suppression, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.list[number]
	if !ok {
		return nil, campaignd.Errorf(campaignd.ENOTFOUND, "%s is not on the suppression list.", number)
	}
	delete(f.list, number)
	f.audit = append(f.audit, a)
	return &s, nil
}

func (f *fakeSuppressions) MOs(_ context.Context, before uint64, limit int) ([]campaignd.MO, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []campaignd.MO
	for i := len(f.mos) - 1; i >= 0; i-- {
		if before == 0 || f.mos[i].ID < before {
			out = append(out, f.mos[i])
		}
	}
	return out, 0, nil
}

func (f *fakeSuppressions) SuppressionAudit(_ context.Context, limit int) ([]campaignd.AuditEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []campaignd.AuditEntry
	for i := len(f.audit) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, f.audit[i])
	}
	return out, nil
}

func (f *fakeSuppressions) actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, a := range f.audit {
		out = append(out, a.User+" "+a.Action+" "+a.Detail)
	}
	return out
}

func mustOpenWithSuppressions(t *testing.T) (http.Handler, *fakeSuppressions) {
	t.Helper()
	fs := newFakeSuppressions()
	s, _ := MustOpenServer(t, func(o *Options) { o.Suppressions = fs })
	return s.Handler(), fs
}

func apiCSV(t *testing.T, h http.Handler, user, body string) *http.Response {
	t.Helper()
	r, _ := http.NewRequest("POST", "/api/v1/suppressions", strings.NewReader(body))
	r.RemoteAddr = "192.0.2.1:1234"
	r.SetBasicAuth(user, testPasswords[user])
	r.Header.Set("Content-Type", "text/csv; charset=utf-8")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func TestSuppressionsAPI(t *testing.T) {
	h, fs := mustOpenWithSuppressions(t)
	// Reading: any role; changing: operator and admin.
	if w := apiReq(t, h, "GET", "/api/v1/suppressions", "viewer", ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"total": 0`) {
		t.Fatalf("viewer GET = %d %s", w.Code, w.Body)
	}
	if w := apiReq(t, h, "GET", "/api/v1/suppressions", "", ""); w.Code != 401 {
		t.Fatalf("anonymous GET = %d", w.Code)
	}
	if w := apiReq(t, h, "POST", "/api/v1/suppressions", "viewer", `{"number":"5512345678"}`); w.Code != 403 {
		t.Fatalf("viewer POST = %d", w.Code)
	}
	if w := apiReq(t, h, "DELETE", "/api/v1/suppressions/5512345678?reason=x", "viewer", ""); w.Code != 403 {
		t.Fatalf("viewer DELETE = %d", w.Code)
	}
	w := apiReq(t, h, "POST", "/api/v1/suppressions", "operator", `{"number":"55 1234 5678","note":"=called the call centre"}`)
	if w.Code != 201 || !strings.Contains(w.Body.String(), `"525512345678"`) {
		t.Fatalf("operator POST = %d %s", w.Code, w.Body)
	}
	if s := fs.list["525512345678"]; s.Reason != campaignd.SuppressAPI || s.By != "operator" || s.Source != "=called the call centre" {
		t.Fatalf("entry %+v", s)
	}
	// Again: 200, nothing added.
	if w := apiReq(t, h, "POST", "/api/v1/suppressions", "admin", `{"number":"5512345678"}`); w.Code != 200 || !strings.Contains(w.Body.String(), `"added": 0`) {
		t.Fatalf("repeat POST = %d %s", w.Code, w.Body)
	}
	// All or nothing: one bad number is a 400 naming it.
	w = apiReq(t, h, "POST", "/api/v1/suppressions", "admin", `{"numbers":["5500000001","55-ABC"]}`)
	if w.Code != 400 || !strings.Contains(w.Body.String(), "55-ABC") {
		t.Fatalf("bad number = %d %s", w.Code, w.Body)
	}
	if _, ok := fs.list["525500000001"]; ok {
		t.Fatal("a request with a bad number added the good one")
	}
	for _, body := range []string{`{}`, `{"numbers":[]}`, `not json`, `{"number":"5512345678","extra":1}`} {
		if w := apiReq(t, h, "POST", "/api/v1/suppressions", "admin", body); w.Code != 400 {
			t.Errorf("body %s = %d %s", body, w.Code, w.Body)
		}
	}
	// A CSV list: the valid lines are imported, the bad ones reported.
	resp := apiCSV(t, h, "operator", "5500000001\n5500000002\n123\n")
	var res SuppressImport
	json.NewDecoder(resp.Body).Decode(&res)
	if resp.StatusCode != 200 || res.Added != 2 || res.Invalid != 1 || len(res.Errors) != 1 || res.Errors[0].Line != 3 {
		t.Fatalf("CSV import = %d %+v", resp.StatusCode, res)
	}
	if resp := apiCSV(t, h, "viewer", "5500000003\n"); resp.StatusCode != 403 {
		t.Fatalf("viewer CSV import = %d", resp.StatusCode)
	}
	if resp := apiCSV(t, h, "admin", "abc\n"); resp.StatusCode != 400 {
		t.Fatalf("CSV without a valid number = %d", resp.StatusCode)
	}
	// Paging with the cursor, and a prefix search.
	w = apiReq(t, h, "GET", "/api/v1/suppressions?limit=2", "viewer", "")
	var page APISuppressions
	json.Unmarshal(w.Body.Bytes(), &page)
	if len(page.Suppressions) != 2 || page.Next == "" || page.Total != 3 {
		t.Fatalf("page 1: %s", w.Body)
	}
	w = apiReq(t, h, "GET", "/api/v1/suppressions?limit=2&after="+page.Next, "viewer", "")
	page = APISuppressions{}
	json.Unmarshal(w.Body.Bytes(), &page)
	if len(page.Suppressions) != 1 || page.Next != "" {
		t.Fatalf("page 2: %s", w.Body)
	}
	for _, q := range []string{"5255000", "55000", "55%200000", "%2B52%2055%200000"} {
		if w := apiReq(t, h, "GET", "/api/v1/suppressions?q="+q, "viewer", ""); strings.Count(w.Body.String(), `"number"`) != 2 {
			t.Fatalf("search %q: %s", q, w.Body)
		}
	}
	if w := apiReq(t, h, "GET", "/api/v1/suppressions?q=55+0000+0002", "viewer", ""); strings.Count(w.Body.String(), `"number"`) != 1 {
		t.Fatalf("search of a whole number: %s", w.Body)
	}
	if w := apiReq(t, h, "GET", "/api/v1/suppressions?limit=0", "viewer", ""); w.Code != 400 {
		t.Fatalf("limit 0 = %d", w.Code)
	}
	// Removal needs a reason; an unlisted number is 404.
	if w := apiReq(t, h, "DELETE", "/api/v1/suppressions/5512345678", "operator", ""); w.Code != 400 || !strings.Contains(w.Body.String(), "reason") {
		t.Fatalf("DELETE without reason = %d %s", w.Code, w.Body)
	}
	if w := apiReq(t, h, "DELETE", "/api/v1/suppressions/5512345678?reason=opted+in+again", "operator", ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"removed"`) {
		t.Fatalf("DELETE = %d %s", w.Code, w.Body)
	}
	if w := apiReq(t, h, "DELETE", "/api/v1/suppressions/5512345678?reason=again", "operator", ""); w.Code != 404 {
		t.Fatalf("DELETE unlisted = %d", w.Code)
	}
	if w := apiReq(t, h, "DELETE", "/api/v1/suppressions/12?reason=x", "operator", ""); w.Code != 400 || !strings.Contains(w.Body.String(), "12") {
		t.Fatalf("DELETE invalid = %d %s", w.Code, w.Body)
	}
	got := strings.Join(fs.actions(), "\n")
	for _, want := range []string{"operator suppress 525512345678: =called the call centre", "operator import api", "operator unsuppress 525512345678: opted in again"} {
		if !strings.Contains(got, want) {
			t.Errorf("audit lacks %q:\n%s", want, got)
		}
	}
	// Replies, newest first.
	w = apiReq(t, h, "GET", "/api/v1/replies", "viewer", "")
	var rp APIReplies
	json.Unmarshal(w.Body.Bytes(), &rp)
	if w.Code != 200 || len(rp.Replies) != 3 || rp.Replies[0].ID != 3 || rp.Replies[1].Keyword != "" {
		t.Fatalf("replies = %d %s", w.Code, w.Body)
	}
}

// The export neutralises formulas in every free-text field.
func TestSuppressionsExport(t *testing.T) {
	h, fs := mustOpenWithSuppressions(t)
	fs.list["525512345678"] = campaignd.Suppression{Number: "525512345678", Reason: campaignd.SuppressOperator,
		Source: "=HYPERLINK(\"http://evil\")", By: "@ana", At: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	for _, path := range []string{"/api/v1/suppressions.csv"} {
		w := apiReq(t, h, "GET", path, "viewer", "")
		body := w.Body.String()
		if w.Code != 200 || !strings.HasPrefix(body, "Number,Reason,Source,Suppressed At,By\n") ||
			!strings.Contains(body, `'=HYPERLINK`) || !strings.Contains(body, "'@ana") || !strings.Contains(body, "525512345678,operator") {
			t.Fatalf("%s = %d\n%s", path, w.Code, body)
		}
	}
	viewer := login(t, h, "viewer")
	if w := viewer.do("GET", "/suppressions/export.csv", nil, nil); w.Code != 200 || !strings.Contains(w.Body.String(), "'=HYPERLINK") {
		t.Fatalf("console export = %d", w.Code)
	}
}

// importForm builds the console's import form: the CSRF token first.
func importForm(t *testing.T, csrf, content string) (io.Reader, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if csrf != "" {
		mw.WriteField("csrf", csrf)
	}
	fw, _ := mw.CreateFormFile("file", "lista.csv")
	fw.Write([]byte(content))
	mw.Close()
	return &b, mw.FormDataContentType()
}

func TestSuppressionsConsole(t *testing.T) {
	h, fs := mustOpenWithSuppressions(t)
	viewer := login(t, h, "viewer")
	w := viewer.do("GET", "/suppressions", nil, nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "Opt-outs") || strings.Contains(w.Body.String(), `id="suppress-add"`) {
		t.Fatalf("viewer page = %d (forms shown to a viewer?)", w.Code)
	}
	if w := viewer.post("/suppressions", url.Values{"number": {"5512345678"}}); w.Code != 403 {
		t.Fatalf("viewer add = %d", w.Code)
	}
	op := login(t, h, "operator")
	if w := op.do("GET", "/suppressions", nil, nil); !strings.Contains(w.Body.String(), `id="suppress-add"`) {
		t.Fatal("no add form for an operator")
	}
	// CSRF: without the token nothing happens.
	form := url.Values{"number": {"5512345678"}, "note": {"por teléfono"}}
	if w := op.do("POST", "/suppressions", strings.NewReader(form.Encode()), nil); w.Code != 403 || len(fs.list) != 0 {
		t.Fatalf("add without CSRF = %d, list %v", w.Code, fs.list)
	}
	form.Set("csrf", op.csrf)
	w = op.do("POST", "/suppressions", strings.NewReader(form.Encode()), nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "525512345678 is on the suppression list") || !strings.Contains(w.Body.String(), `data-number="525512345678"`) {
		t.Fatalf("add = %d %s", w.Code, w.Body)
	}
	if s := fs.list["525512345678"]; s.Reason != campaignd.SuppressOperator || s.By != "operator" || s.Source != "por teléfono" {
		t.Fatalf("entry %+v", s)
	}
	if w := op.post("/suppressions", url.Values{"number": {"55-12"}}); w.Code != 400 || !strings.Contains(w.Body.String(), "55-12") {
		t.Fatalf("bad number = %d %s", w.Code, w.Body)
	}
	// Removal needs a reason.
	if w := op.post("/suppressions/remove", url.Values{"number": {"525512345678"}}); w.Code != 400 {
		t.Fatalf("remove without reason = %d", w.Code)
	}
	if w := op.post("/suppressions/remove", url.Values{"number": {"525512345678"}, "reason": {"se registró de nuevo"}}); w.Code != 200 || len(fs.list) != 0 {
		t.Fatalf("remove = %d, list %v", w.Code, fs.list)
	}
	// Import: the token is checked before the file is read.
	body, ct := importForm(t, "", "5500000001\n")
	if w := op.do("POST", "/suppressions/import", body, map[string]string{"Content-Type": ct}); w.Code != 403 || len(fs.list) != 0 {
		t.Fatalf("import without CSRF = %d, list %v", w.Code, fs.list)
	}
	body, ct = importForm(t, "wrong", "5500000001\n")
	if w := op.do("POST", "/suppressions/import", body, map[string]string{"Content-Type": ct}); w.Code != 403 {
		t.Fatalf("import with a wrong token = %d", w.Code)
	}
	body, ct = importForm(t, viewer.csrf, "5500000001\n")
	if w := viewer.do("POST", "/suppressions/import", body, map[string]string{"Content-Type": ct}); w.Code != 403 || len(fs.list) != 0 {
		t.Fatalf("viewer import = %d", w.Code)
	}
	body, ct = importForm(t, op.csrf, "5500000001\n5500000002\nxx\n")
	w = op.do("POST", "/suppressions/import", body, map[string]string{"Content-Type": ct})
	if w.Code != 200 || len(fs.list) != 2 || !strings.Contains(w.Body.String(), "2 numbers added") || !strings.Contains(w.Body.String(), `id="import-errors"`) {
		t.Fatalf("import = %d, list %v\n%s", w.Code, fs.list, w.Body)
	}
	// Search by prefix.
	if w := viewer.do("GET", "/suppressions?q=525500000002", nil, nil); strings.Count(w.Body.String(), "data-number=") != 1 {
		t.Fatalf("search: %s", w.Body)
	}
	// Replies: every reply, keyword or not.
	w = viewer.do("GET", "/replies", nil, nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "¿Cuándo llegan mis puntos?") || strings.Count(w.Body.String(), "data-id=") != 3 {
		t.Fatalf("replies = %d %s", w.Code, w.Body)
	}
	if got := strings.Join(fs.actions(), "\n"); !strings.Contains(got, "operator suppress 525512345678: por teléfono") ||
		!strings.Contains(got, "operator unsuppress 525512345678: se registró de nuevo") || !strings.Contains(got, "operator import lista.csv") {
		t.Fatalf("audit:\n%s", got)
	}
}

// Without a suppression backend the pages say so instead of failing.
func TestSuppressionsOff(t *testing.T) {
	s, _ := MustOpenServer(t, nil)
	if w := apiReq(t, s.Handler(), "GET", "/api/v1/suppressions", "viewer", ""); w.Code != 404 {
		t.Fatalf("GET = %d", w.Code)
	}
}

// A broadcast's page shows its suppressed messages and opted-out rows.
func TestBroadcastPageShowsOptouts(t *testing.T) {
	s, fake := MustOpenServer(t, nil)
	fake.mu.Lock()
	fake.bs[1].b.Counts.Suppressed, fake.bs[1].b.Counts.OptedOut = 7, 4
	fake.bs[4].b.Counts.OptedOut = 3
	fake.mu.Unlock()
	viewer := login(t, s.Handler(), "viewer")
	body := viewer.do("GET", "/broadcasts/1", nil, nil).Body.String()
	if !strings.Contains(body, `id="r-suppressed">7<`) {
		t.Errorf("completed page lacks the suppressed count")
	}
	body = viewer.do("GET", "/broadcasts/4", nil, nil).Body.String()
	if !strings.Contains(body, "3 more opted out") {
		t.Errorf("skipped rows lack the opted-out count")
	}
}

// TestSuppressionsAPIRefusesFormTypes: a POST a cross-site form could send
// without a preflight (text/plain, form-encoded, no type) changes nothing,
// even with valid credentials the browser may have cached.
func TestSuppressionsAPIRefusesFormTypes(t *testing.T) {
	h, fs := mustOpenWithSuppressions(t)
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		r := httptest.NewRequest("POST", "/api/v1/suppressions", strings.NewReader(`{"number":"5512345678"}`))
		r.SetBasicAuth("admin", testPasswords["admin"])
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest {
			t.Errorf("Content-Type %q: %d %s, want 400", ct, w.Code, w.Body)
		}
	}
	if len(fs.list) != 0 {
		t.Fatalf("list changed: %v", fs.list)
	}
}
