package store_test

import (
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
)

func TestAuditSearch(t *testing.T) {
	db := testenv.OpenStore(t)
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for i, e := range []campaignd.AuditEntry{
		{BroadcastID: 1, User: "ana", Action: "send"},
		{BroadcastID: 2, User: "luis", Action: "schedule"},
		{BroadcastID: 1, User: "system", Action: "complete"},
		{User: "sms", Action: "suppress"},
		{BroadcastID: 300, User: "ana", Action: "delete"},
	} {
		e.At = t0.Add(time.Duration(i) * time.Hour)
		if err := db.Audit(e); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		q     campaignd.AuditQuery
		total int
		first string
	}{
		{"all newest first", campaignd.AuditQuery{Limit: 2}, 5, "delete"},
		{"one broadcast", campaignd.AuditQuery{BroadcastID: 1}, 2, "complete"},
		{"a broadcast whose id prefixes none", campaignd.AuditQuery{BroadcastID: 3}, 0, ""},
		{"one user", campaignd.AuditQuery{User: "ana"}, 2, "delete"},
		{"from", campaignd.AuditQuery{From: t0.Add(2 * time.Hour)}, 3, "delete"},
		{"to is exclusive", campaignd.AuditQuery{To: t0.Add(2 * time.Hour)}, 2, "schedule"},
		{"second page", campaignd.AuditQuery{Offset: 4, Limit: 2}, 5, "send"},
		{"past the end", campaignd.AuditQuery{Offset: 9, Limit: 2}, 5, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, total, err := db.AuditSearch(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if total != tc.total {
				t.Errorf("total %d, want %d", total, tc.total)
			}
			if first := ""; len(got) > 0 {
				first = got[0].Action
				if first != tc.first {
					t.Errorf("first %q, want %q", first, tc.first)
				}
			} else if tc.first != "" {
				t.Errorf("no entries, want %q first", tc.first)
			}
			if tc.q.Limit > 0 && len(got) > tc.q.Limit {
				t.Errorf("%d entries over the limit", len(got))
			}
		})
	}
}
