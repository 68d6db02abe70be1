package webui

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"math"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuf is a log destination safe for concurrent handlers.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestTimeJSON(t *testing.T) {
	for _, tc := range []struct {
		in   time.Time
		want string
	}{
		{time.Time{}, `null`},
		{time.Date(2026, 5, 1, 9, 0, 0, 0, mexico), `"2026-05-01T15:00:00Z"`},
		{time.Date(9999, 12, 31, 23, 59, 0, 0, mexico), `"10000-01-01T05:59:00Z"`},
		{time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC), `"-0005-01-01T00:00:00Z"`},
	} {
		b, err := json.Marshal(struct{ T Time }{Time{tc.in}})
		if err != nil || string(b) != `{"T":`+tc.want+`}` {
			t.Errorf("%v: %s %v, want %s", tc.in, b, err, tc.want)
		}
	}
}

// TestFarDatesShown: broadcasts, uploads and reports stored with dates
// encoding/json refuses are listed and shown by the API and the console.
func TestFarDatesShown(t *testing.T) {
	var logs syncBuf
	s, fake := MustOpenServer(t, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	far := time.Date(9999, 12, 31, 23, 59, 0, 0, mexico)
	fake.mu.Lock()
	fake.bs[3].b.ScheduledAt = far
	fake.bs[4].b.CreatedAt = far
	fake.uploads[0].ReceivedAt = far
	fake.reports[0].NextAttempt = far
	fake.mu.Unlock()
	h := s.Handler()
	for _, path := range []string{"/api/v1/broadcasts", "/api/v1/broadcasts?status=scheduled", "/api/v1/broadcasts/3",
		"/api/v1/broadcasts/4", "/api/v1/files", "/api/v1/reports"} {
		w := apiReq(t, h, "GET", path, "viewer", "")
		if w.Code != 200 || !json.Valid(w.Body.Bytes()) || !strings.Contains(w.Body.String(), `"10000-01-01T05:59:00Z"`) {
			t.Errorf("GET %s = %d:\n%.400s", path, w.Code, w.Body)
		}
	}
	c := login(t, h, "viewer")
	for _, path := range []string{"/broadcasts", "/broadcasts/3", "/broadcasts/3/panel", "/broadcasts/4", "/files", "/reports"} {
		if w := c.do("GET", path, nil, nil); w.Code != 200 {
			t.Errorf("console %s = %d", path, w.Code)
		}
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", logs.String())
	}
}

// TestEncodeFailureLogged: an item that cannot be encoded is logged with
// its id; a list shows the others and an {"id", "error"} in its place, a
// single item answers a 500 that names no internals.
func TestEncodeFailureLogged(t *testing.T) {
	var logs syncBuf
	s, _ := MustOpenServer(t, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	type item struct {
		ID uint64  `json:"id"`
		X  float64 `json:"x"`
	}
	r := httptest.NewRequest("GET", "/api/v1/broadcasts", nil)
	out := encodeEach(s, r, []item{{1, 1}, {77, math.NaN()}, {3, 3}}, keyBroadcast, func(i item) uint64 { return i.ID })
	if len(out) != 3 || string(out[0]) != `{"id":1,"x":1}` || !strings.Contains(string(out[1]), `"id":77,"error":`) {
		t.Errorf("items: %s", out)
	}
	if !strings.Contains(logs.String(), "broadcast_id=77") || strings.Contains(logs.String(), "broadcast_id=1 ") {
		t.Errorf("log: %s", logs.String())
	}
	w := httptest.NewRecorder()
	s.writeJSON(w, r, 200, item{88, math.Inf(1)}, keyUpload, uint64(88))
	if w.Code != 500 || strings.Contains(w.Body.String(), "NaN") || strings.Contains(w.Body.String(), "json") ||
		!strings.Contains(w.Body.String(), `"error"`) || !strings.Contains(logs.String(), "upload_id=88") {
		t.Errorf("single item: %d %s; log %s", w.Code, w.Body, logs.String())
	}
}
