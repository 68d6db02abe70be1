package engine_test

import (
	"strings"
	"testing"
	"time"

	"campaignd"
	"campaignd/pipeline/engine"
)

// A broadcast admitted sending because its file's date had passed gets a
// Started time and a system entry in its audit trail with the reason, once.
func TestAdmitPastDateRecordsStart(t *testing.T) {
	h := newHarness(t, nil, nil, nil).start(t)
	date := engT0.Add(-2 * time.Hour)
	b := mustBroadcast(t, h.db, 2, func(b *campaignd.Broadcast) {
		b.Status, b.ScheduledAt = campaignd.StatusSending, date
	})
	if err := h.eng.Admit(b); err != nil {
		t.Fatal(err)
	}
	got := h.broadcast(t, b.ID)
	if !got.StartedAt.Equal(engT0) || !got.ScheduledAt.Equal(date) {
		t.Fatalf("started %v, scheduled %v; want %v and the file's date %v", got.StartedAt, got.ScheduledAt, engT0, date)
	}
	log, err := h.db.AuditLog(b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || log[0].User != engine.SystemUser || log[0].Action != "start" ||
		log[0].Detail != "started at once: its date "+date.Format(time.RFC3339)+" had passed when the file was ingested" {
		t.Fatalf("audit = %+v", log)
	}
	h.waitStatus(t, b.ID, campaignd.StatusCompleted)
	// Admitted again (a restart's reconciliation): nothing more recorded.
	if err := h.eng.Admit(got); err != nil {
		t.Fatal(err)
	}
	if log, _ := h.db.AuditLog(b.ID); len(log) != 1 {
		t.Fatalf("audit after a second admit = %+v", log)
	}
}

// Send now on a scheduled broadcast clears its date (API scheduled_at is
// then null); the audit entry keeps the date it had.
func TestSendNowClearsSchedule(t *testing.T) {
	h := newHarness(t, nil, nil, nil).start(t)
	b := mustBroadcast(t, h.db, 2, nil)
	at := engT0.Add(3 * time.Hour)
	h.mustAct(t, b.ID, campaignd.ActionSchedule, at)
	got := h.mustAct(t, b.ID, campaignd.ActionSend, time.Time{})
	if !got.ScheduledAt.IsZero() || !got.StartedAt.Equal(engT0) {
		t.Fatalf("after send now: scheduled %v, started %v", got.ScheduledAt, got.StartedAt)
	}
	if s := h.broadcast(t, b.ID); !s.ScheduledAt.IsZero() {
		t.Fatalf("stored scheduled_at %v", s.ScheduledAt)
	}
	log, _ := h.db.AuditLog(b.ID)
	if len(log) != 2 || log[1].Action != "send" || !strings.Contains(log[1].Detail, "was scheduled for "+at.Format(time.RFC3339)) {
		t.Fatalf("audit = %+v", log)
	}
}
