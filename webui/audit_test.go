package webui

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestAuditPageAndAPI: the audit log is readable by admins and operators
// (console and API), filtered by broadcast, user and dates, paginated;
// viewers are refused; a deleted broadcast keeps a page with its trail.
func TestAuditPageAndAPI(t *testing.T) {
	s, fake := MustOpenServer(t, nil)
	h := s.Handler()
	op := login(t, h, "operator")
	op.post("/broadcasts/4/send", nil)
	op.post("/broadcasts/6/delete", nil)

	page := op.do("GET", "/audit", nil, nil)
	if page.Code != 200 || !strings.Contains(page.Body.String(), `href="/broadcasts/6"`) || !strings.Contains(page.Body.String(), `href="/audit"`) {
		t.Fatalf("audit page = %d:\n%s", page.Code, page.Body)
	}
	if b := op.do("GET", "/audit?broadcast=1", nil, nil).Body.String(); strings.Contains(b, `href="/broadcasts/4"`) || !strings.Contains(b, `href="/broadcasts/1"`) {
		t.Errorf("broadcast filter ignored")
	}
	if b := op.do("GET", "/audit?user=nobody", nil, nil).Body.String(); !strings.Contains(b, "No entries match.") {
		t.Errorf("user filter ignored")
	}
	if w := op.do("GET", "/audit?from=yesterday", nil, nil); w.Code != 400 || !strings.Contains(w.Body.String(), "dd/mm/yyyy") {
		t.Errorf("bad date = %d", w.Code)
	}
	viewer := login(t, h, "viewer")
	if w := viewer.do("GET", "/audit", nil, nil); w.Code != 403 {
		t.Errorf("viewer audit page = %d", w.Code)
	}
	if b := viewer.do("GET", "/broadcasts", nil, nil).Body.String(); strings.Contains(b, `href="/audit"`) {
		t.Errorf("viewer sees the Audit link")
	}

	// API: JSON, filters, pagination, roles.
	var got struct {
		Total, Offset, Limit int
		Entries              []struct {
			At          *time.Time `json:"at"`
			User        string     `json:"user"`
			BroadcastID uint64     `json:"broadcast_id"`
			Action      string     `json:"action"`
		}
	}
	w := apiReq(t, h, "GET", "/api/v1/audit?limit=2", "admin", "")
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &got) != nil || got.Total != 3 || len(got.Entries) != 2 || got.Entries[0].Action != "delete" {
		t.Fatalf("api audit = %d %s", w.Code, w.Body)
	}
	today := time.Now().In(mexico).Format(time.DateOnly)
	w = apiReq(t, h, "GET", "/api/v1/audit?"+url.Values{"broadcast": {"4"}, "user": {"operator"}, "from": {today}, "to": {today}}.Encode(), "operator", "")
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &got) != nil || got.Total != 1 || got.Entries[0].Action != "send" {
		t.Errorf("filtered api audit = %d %s", w.Code, w.Body)
	}
	for q, code := range map[string]int{"broadcast=x": 400, "limit=0": 400, "limit=1001": 400, "from=31/13/2026": 400, "to=2026-12-01T00:00:00Z": 200} {
		if w := apiReq(t, h, "GET", "/api/v1/audit?"+q, "admin", ""); w.Code != code {
			t.Errorf("api audit ?%s = %d, want %d", q, w.Code, code)
		}
	}
	if w := apiReq(t, h, "GET", "/api/v1/audit", "viewer", ""); w.Code != 403 {
		t.Errorf("viewer api audit = %d", w.Code)
	}

	// The deleted broadcast: a tombstone with its trail, not a 404.
	w = op.do("GET", "/broadcasts/6", nil, nil)
	if w.Code != 410 || !strings.Contains(w.Body.String(), "Broadcast #6") || !strings.Contains(w.Body.String(), "delete") {
		t.Errorf("tombstone = %d:\n%s", w.Code, w.Body)
	}
	if w := op.do("GET", "/broadcasts/999", nil, nil); w.Code != 404 {
		t.Errorf("never existed = %d", w.Code)
	}
	_ = fake
	// Help, in both languages, linked from the header.
	if w := op.do("GET", "/help", nil, nil); w.Code != 200 || !strings.Contains(w.Body.String(), "add up to 100 %.") || !strings.Contains(w.Body.String(), `id="help-link"`) {
		t.Errorf("help = %d:\n%s", w.Code, w.Body)
	}
	op.do("POST", "/language", strings.NewReader(url.Values{"lang": {"es"}, "csrf": {op.csrf}}.Encode()), nil)
	if w := op.do("GET", "/help", nil, nil); !strings.Contains(w.Body.String(), "suman 100 %.") || strings.Contains(w.Body.String(), "%!") {
		t.Errorf("Spanish help:\n%s", w.Body)
	}
}
