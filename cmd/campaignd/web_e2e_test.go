package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"campaignd"
)

// webGet GETs path as admin and returns the status and the body.
func webGet(t *testing.T, m *Main, path string) (int, string) {
	t.Helper()
	return apiPost(t, webBase(m), "GET", path, testAdmin, "")
}

// consoleClient signs in to the console through the form and returns a
// client with the session cookie and the page's CSRF token.
func consoleClient(t *testing.T, m *Main) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := c.PostForm(webBase(m)+"/login", url.Values{"username": {testAdmin}, "password": {testPass}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m2 := regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`).FindSubmatch(body)
	if resp.StatusCode != 200 || m2 == nil {
		t.Fatalf("console login: %d", resp.StatusCode)
	}
	return c, string(m2[1])
}

func pendingBroadcast(t *testing.T, m *Main, name string) uint64 {
	t.Helper()
	upload(t, m.FTP.Addr(), name, csvFile("", 3))
	b := broadcastOf(t, m, name)
	if b.Status != campaignd.StatusPending {
		t.Fatalf("%s: status %s, want pending", name, b.Status)
	}
	return b.ID
}

// TestScheduleHorizon: a date more than a year ahead is refused with a
// clear 400 by the API and the console, and nothing changes: not the
// status, not the date, not the audit trail.
func TestScheduleHorizon(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Web.Language = "en" // the console's messages are read in English
	m := MustRunMain(t, cfg)
	base := webBase(m)
	id := pendingBroadcast(t, m, "horizon.csv")
	path := fmt.Sprintf("/api/v1/broadcasts/%d/schedule", id)
	auditLen := func() int {
		log, err := m.DB.AuditLog(id)
		if err != nil {
			t.Fatal(err)
		}
		return len(log)
	}
	unchanged := func(what string, status campaignd.Status, at time.Time, audit int) {
		t.Helper()
		b, err := m.DB.Broadcast(id)
		if err != nil {
			t.Fatal(err)
		}
		if b.Status != status || !b.ScheduledAt.Equal(at) || auditLen() != audit {
			t.Fatalf("%s changed the broadcast: %s at %v, %d audit entries", what, b.Status, b.ScheduledAt, auditLen())
		}
	}
	far := []string{
		"9999-12-31T23:59:00-06:00",
		time.Now().Add(campaignd.MaxScheduleAhead + time.Hour).UTC().Format(time.RFC3339),
		"2999-01-01T00:00:00Z",
	}
	for _, at := range far {
		code, body := apiPost(t, base, "POST", path, testAdmin, `{"at":"`+at+`"}`)
		if code != 400 || !strings.Contains(body, "more than a year ahead") {
			t.Errorf("schedule at %s = %d %s, want 400", at, code, body)
		}
		unchanged("API schedule at "+at, campaignd.StatusPending, time.Time{}, 0)
	}
	// The console's form, in the console's zone.
	c, csrf := consoleClient(t, m)
	for _, at := range []string{"9999-12-31T23:59", time.Now().In(m.loc).AddDate(2, 0, 0).Format("2006-01-02T15:04")} {
		resp, err := c.PostForm(fmt.Sprintf("%s/broadcasts/%d/schedule", base, id), url.Values{"at": {at}, "csrf": {csrf}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(body), "more than a year ahead") {
			t.Errorf("console schedule at %s = %d", at, resp.StatusCode)
		}
		unchanged("console schedule at "+at, campaignd.StatusPending, time.Time{}, 0)
	}
	// Within the horizon it is applied; re-dating past it keeps the date.
	ok := time.Now().Add(300 * 24 * time.Hour).UTC().Truncate(time.Second)
	if code, body := apiPost(t, base, "POST", path, testAdmin, `{"at":"`+ok.Format(time.RFC3339)+`"}`); code != 200 {
		t.Fatalf("schedule within a year = %d %s", code, body)
	}
	audit := auditLen()
	if code, _ := apiPost(t, base, "POST", path, testAdmin, `{"at":"`+far[0]+`"}`); code != 400 {
		t.Errorf("re-date past the horizon = %d", code)
	}
	unchanged("re-date", campaignd.StatusScheduled, ok, audit)
}

// TestFarStoredDateNeverBreaksTheAPI: a broadcast stored with a date JSON
// cannot carry in UTC (9999-12-31 23:59 in Mexico City is year 10000 UTC),
// as an older version could store it, is listed and shown by the API and
// the console; nothing answers 500.
func TestFarStoredDateNeverBreaksTheAPI(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Web.Language = "en" // the console's dates are read in English
	m := MustRunMain(t, cfg)
	id := pendingBroadcast(t, m, "far.csv")
	far := time.Date(9999, 12, 31, 23, 59, 0, 0, m.loc)
	if _, err := m.DB.UpdateBroadcast(id, func(b *campaignd.Broadcast) error {
		b.Status, b.ScheduledAt = campaignd.StatusScheduled, far
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := far.UTC().Format(time.RFC3339)
	for _, path := range []string{"/api/v1/broadcasts", "/api/v1/broadcasts?status=scheduled", fmt.Sprintf("/api/v1/broadcasts/%d", id)} {
		code, body := webGet(t, m, path)
		if code != 200 || !strings.Contains(body, `"scheduled_at": "`+want+`"`) || !json.Valid([]byte(body)) {
			t.Errorf("GET %s = %d, want 200 with %s:\n%.500s", path, code, want, body)
		}
	}
	c, _ := consoleClient(t, m)
	for _, path := range []string{"/broadcasts", fmt.Sprintf("/broadcasts/%d", id), fmt.Sprintf("/broadcasts/%d/panel", id)} {
		resp, err := c.Get(webBase(m) + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "31 Dec 9999 23:59") {
			t.Errorf("console %s = %d", path, resp.StatusCode)
		}
	}
}

// TestFilesListBoundedWithRealStore: uploads whose stored records hold
// thousands of long errors are listed a page at a time with a few cut
// errors each; one upload's errors are paged.
func TestFilesListBoundedWithRealStore(t *testing.T) {
	m := MustRunMain(t, testConfig(t.TempDir()))
	col := strings.Repeat("c", 1000)
	var ids []uint64
	for i := range 4 {
		u := &campaignd.Upload{User: testFTPUser, Path: fmt.Sprintf("/big%d.csv", i), FileName: fmt.Sprintf("big%d.csv", i),
			ReceivedAt: time.Now()}
		if _, err := m.DB.CreateUpload(u); err != nil {
			t.Fatal(err)
		}
		u.Errors = make([]campaignd.FileError, 3000)
		for j := range u.Errors {
			u.Errors[j] = campaignd.FileError{Line: j + 2, Column: col, Value: col, Error: campaignd.RowInvalidRecipient}
		}
		u.ErrorCount, u.Outcome = 3000, campaignd.UploadRejected
		if err := m.DB.RejectUpload(u); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	code, body := webGet(t, m, "/api/v1/files")
	var list struct {
		Total int
		Files []struct {
			ID         uint64
			ErrorCount int    `json:"error_count"`
			ErrorsURL  string `json:"errors_url"`
			Errors     []campaignd.FileError
		}
	}
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil {
		t.Fatalf("files: %d %.300s", code, body)
	}
	// 4 × 3000 errors of 2 KB are stored (24 MB); the list is a few KB.
	if len(body) > 64<<10 || list.Total != 4 || len(list.Files) != 4 {
		t.Fatalf("files: %d bytes, total %d, %d files", len(body), list.Total, len(list.Files))
	}
	for _, f := range list.Files {
		if len(f.Errors) != 5 || f.ErrorCount != 3000 || len(f.Errors[0].Column) > 210 || f.ErrorsURL == "" {
			t.Errorf("file %d: %d errors of %d, column %d bytes", f.ID, len(f.Errors), f.ErrorCount, len(f.Errors[0].Column))
		}
	}
	code, body = webGet(t, m, fmt.Sprintf("/api/v1/files/%d/errors?offset=2990&limit=50", ids[2]))
	var page struct {
		Total  int
		Errors []campaignd.FileError
	}
	if code != 200 || json.Unmarshal([]byte(body), &page) != nil || page.Total != 3000 || len(page.Errors) != 10 || page.Errors[0].Line != 2992 {
		t.Errorf("errors page: %d total %d, %d errors", code, page.Total, len(page.Errors))
	}
	c, _ := consoleClient(t, m)
	for _, path := range []string{"/files", fmt.Sprintf("/files/%d?page=30", ids[0])} {
		resp, err := c.Get(webBase(m) + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(b) > 256<<10 {
			t.Errorf("console %s = %d, %d bytes", path, resp.StatusCode, len(b))
		}
	}
}

// TestBasicAuthBruteForceConcurrent: 40 wrong API passwords sent at once
// over real HTTP are answered 401 at most 5 times (the per-name limit),
// 429 otherwise, and the right password is then refused too.
func TestBasicAuthBruteForceConcurrent(t *testing.T) {
	m := MustRunMain(t, testConfig(t.TempDir()))
	try := func(password string) int {
		req, _ := http.NewRequest("GET", webBase(m)+"/api/v1/files", nil)
		req.SetBasicAuth(testAdmin, password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	start := make(chan struct{})
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			code := try(fmt.Sprintf("guess-%d", i))
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	if codes[401] < 1 || codes[401] > 5 || codes[401]+codes[429] != 40 {
		t.Errorf("40 concurrent guesses: %v, want at most 5 × 401 and the rest 429", codes)
	}
	if codes[401] == 5 {
		if code := try(testPass); code != 429 {
			t.Errorf("right password after 5 failures = %d, want 429", code)
		}
	}
	resp, err := http.Get("http://" + m.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf(`campaignd_web_logins_total{result="bad_credentials"} %d`, codes[401]); !strings.Contains(string(body), want) {
		t.Errorf("metrics lack %s", want)
	}
	if !strings.Contains(string(body), `campaignd_web_logins_total{result="throttled"}`) {
		t.Error("metrics lack throttled web logins")
	}
}
