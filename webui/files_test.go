package webui

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"campaignd"
)

// addHugeUploads gives the fake n uploads of errs errors each, every error
// with a 64 KB column name and value (one string shared, so the test is
// cheap) — what an upload with a hostile header stored before ingest
// bounded it.
func addHugeUploads(f *fakeBackend, n, errs int) {
	col := strings.Repeat("nombre_", 65536/7)
	val := strings.Repeat("é", 32768)
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range n {
		u := &campaignd.Upload{ID: uint64(1000 + i), User: "syniverse", FileName: fmt.Sprintf("huge%d.csv", i),
			Path: fmt.Sprintf("/huge%d.csv", i), ReceivedAt: time.Now(), Outcome: campaignd.UploadRejected}
		u.Errors = make([]campaignd.FileError, errs)
		for j := range u.Errors {
			u.Errors[j] = campaignd.FileError{Line: j + 2, Column: col, Value: val, Error: "invalid recipient"}
		}
		u.ErrorCount = errs
		f.uploads = append([]*campaignd.Upload{u}, f.uploads...)
	}
}

func checkClipped(t *testing.T, errs []campaignd.FileError) {
	t.Helper()
	for _, e := range errs {
		if len(e.Column) > maxShownField+3 || len(e.Value) > maxShownField+3 || !utf8.ValidString(e.Value) ||
			!strings.HasSuffix(e.Column, "…") {
			t.Fatalf("error not cut: column %d bytes, value %d bytes", len(e.Column), len(e.Value))
		}
	}
}

// TestFilesBounded: however many and however long the stored errors, the
// Files list (API and console) is paginated and each file shows a few cut
// errors; one file's errors are paged.
func TestFilesBounded(t *testing.T) {
	s, fake := MustOpenServer(t, nil)
	addHugeUploads(fake, 60, 20_000)
	h := s.Handler()

	var list struct {
		Total, Offset, Limit int
		Files                []APIUpload
	}
	for _, tc := range []struct {
		query      string
		n, maxBody int
	}{
		{"", 50, 400 << 10},
		{"?limit=200", 68, 600 << 10},
		{"?offset=55&limit=10", 10, 100 << 10},
		{"?offset=1000", 0, 1 << 10},
	} {
		w := apiReq(t, h, "GET", "/api/v1/files"+tc.query, "viewer", "")
		if w.Code != 200 || w.Body.Len() > tc.maxBody {
			t.Fatalf("files%s: %d, %d bytes (at most %d)", tc.query, w.Code, w.Body.Len(), tc.maxBody)
		}
		if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil {
			t.Fatal(err)
		}
		if list.Total != 68 || len(list.Files) != tc.n {
			t.Fatalf("files%s: total %d, %d files", tc.query, list.Total, len(list.Files))
		}
		for _, f := range list.Files {
			if f.ID >= 1000 && (len(f.Errors) != listErrors || f.ErrorCount != 20_000 || f.ErrorsURL != fmt.Sprintf("/api/v1/files/%d/errors", f.ID)) {
				t.Fatalf("file %d: %d errors of %d, url %q", f.ID, len(f.Errors), f.ErrorCount, f.ErrorsURL)
			}
			if f.ID >= 1000 {
				checkClipped(t, f.Errors)
			}
		}
	}
	for _, q := range []string{"?limit=201", "?limit=0", "?offset=-1", "?limit=x"} {
		if w := apiReq(t, h, "GET", "/api/v1/files"+q, "viewer", ""); w.Code != 400 {
			t.Errorf("files%s = %d", q, w.Code)
		}
	}

	w := apiReq(t, h, "GET", "/api/v1/files/1010", "viewer", "")
	var one APIUpload
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &one) != nil || len(one.Errors) != listErrors || one.ErrorCount != 20_000 {
		t.Fatalf("one file: %d %.300s", w.Code, w.Body)
	}
	var page struct {
		ID                   uint64
		ErrorCount           int `json:"error_count"`
		Total, Offset, Limit int
		Errors               []campaignd.FileError
	}
	w = apiReq(t, h, "GET", "/api/v1/files/1010/errors?offset=19950&limit=1000", "viewer", "")
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &page) != nil {
		t.Fatalf("errors page: %d %.300s", w.Code, w.Body)
	}
	if page.Total != 20_000 || page.ErrorCount != 20_000 || len(page.Errors) != 50 || page.Errors[0].Line != 19952 {
		t.Errorf("errors page: total %d count %d, %d errors from line %d", page.Total, page.ErrorCount, len(page.Errors), page.Errors[0].Line)
	}
	checkClipped(t, page.Errors)
	if w := apiReq(t, h, "GET", "/api/v1/files/1010/errors", "viewer", ""); w.Code != 200 || w.Body.Len() > 100<<10 {
		t.Errorf("default errors page: %d, %d bytes", w.Code, w.Body.Len())
	}
	for path, code := range map[string]int{
		"/api/v1/files/1010/errors?limit=1001": 400, "/api/v1/files/999999/errors": 404,
		"/api/v1/files/0": 404, "/api/v1/files/x/errors": 404,
	} {
		if w := apiReq(t, h, "GET", path, "viewer", ""); w.Code != code {
			t.Errorf("%s = %d, want %d", path, w.Code, code)
		}
	}

	// The console: 25 files a page, 5 errors each; one file's errors 100 a page.
	c := login(t, h, "viewer")
	w = c.do("GET", "/files", nil, nil)
	body := w.Body.String()
	if w.Code != 200 || w.Body.Len() > 400<<10 || strings.Count(body, "<li>") != 25*listErrors ||
		!strings.Contains(body, `href="/files/1059"`) || !strings.Contains(body, "All 20,000 errors") {
		t.Fatalf("files page: %d, %d bytes, %d errors shown", w.Code, w.Body.Len(), strings.Count(body, "<li>"))
	}
	w = c.do("GET", "/files/1010?page=200", nil, nil)
	body = w.Body.String()
	if w.Code != 200 || w.Body.Len() > 200<<10 || strings.Count(body, `<td class="num">`) != errorsPerPage ||
		!strings.Contains(body, `<td class="num">20001</td>`) || !strings.Contains(body, "Showing 19,901–20,000") {
		t.Fatalf("file page 200: %d, %d bytes, %d rows", w.Code, w.Body.Len(), strings.Count(body, `<td class="num">`))
	}
	if w := c.do("GET", "/files/1010?page=2000000", nil, nil); w.Code != 400 {
		t.Errorf("page out of range = %d", w.Code)
	}
	if w := c.do("GET", "/files/424242", nil, nil); w.Code != 404 {
		t.Errorf("unknown file = %d", w.Code)
	}
}

// TestBroadcastPageBoundsSkipped: a broadcast whose upload stored many long
// errors shows only the first few, cut, with a link to all of them.
func TestBroadcastPageBoundsSkipped(t *testing.T) {
	s, fake := MustOpenServer(t, nil)
	addHugeUploads(fake, 1, 5000)
	fake.mu.Lock()
	fake.bs[4].b.UploadID = 1000
	fake.mu.Unlock()
	c := login(t, s.Handler(), "viewer")
	w := c.do("GET", "/broadcasts/4", nil, nil)
	body := w.Body.String()
	i := strings.Index(body, `id="skipped"`)
	if w.Code != 200 || i < 0 || w.Body.Len() > 200<<10 {
		t.Fatalf("broadcast page: %d, %d bytes", w.Code, w.Body.Len())
	}
	if n := strings.Count(body[i:], "invalid recipient"); n != skippedErrors || !strings.Contains(body, `<a href="/files/1000">all errors</a>`) {
		t.Errorf("%d skipped rows shown, want %d with a link", n, skippedErrors)
	}
}

func TestClipText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…"},
		{"añb", 2, "a…"},
		{"ññ", 3, "ñ…"},
		{"", 0, ""},
	} {
		if got := clipText(tc.in, tc.n); got != tc.want {
			t.Errorf("clipText(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
