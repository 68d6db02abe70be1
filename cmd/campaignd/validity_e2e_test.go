package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
)

// TestSendNowAndValidityOverAPI, with the real engine and store: a
// schedule carries a validity; a send with one out of bounds is a 400 that
// changes nothing; Send now clears scheduled_at and sets started_at.
func TestSendNowAndValidityOverAPI(t *testing.T) {
	m := MustRunMain(t, testConfig(t.TempDir()))
	base := webBase(m)
	id := pendingBroadcast(t, m, "vigencia.csv")
	at := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	get := func() map[string]any {
		t.Helper()
		code, body := webGet(t, m, fmt.Sprintf("/api/v1/broadcasts/%d", id))
		var b map[string]any
		if code != 200 || json.Unmarshal([]byte(body), &b) != nil {
			t.Fatalf("GET = %d %s", code, body)
		}
		return b
	}
	if b := get(); b["validity"] != "2d" || b["validity_default"] != true {
		t.Fatalf("default validity: %v %v", b["validity"], b["validity_default"])
	}
	code, body := apiPost(t, base, "POST", fmt.Sprintf("/api/v1/broadcasts/%d/schedule", id), testAdmin, `{"at":"`+at+`","validity":"3h"}`)
	if code != 200 || !strings.Contains(body, `"validity": "3h"`) || !strings.Contains(body, `"scheduled_at": "`+at+`"`) {
		t.Fatalf("schedule = %d %s", code, body)
	}
	code, body = apiPost(t, base, "POST", fmt.Sprintf("/api/v1/broadcasts/%d/send", id), testAdmin, `{"validity":"30d"}`)
	if code != 400 || !strings.Contains(body, "out of bounds") {
		t.Fatalf("send with 30d = %d %s", code, body)
	}
	if b := get(); b["status"] != "scheduled" || b["validity"] != "3h" {
		t.Fatalf("a refused send changed the broadcast: %v %v", b["status"], b["validity"])
	}
	code, body = apiPost(t, base, "POST", fmt.Sprintf("/api/v1/broadcasts/%d/send", id), testAdmin, "")
	if code != 200 || !strings.Contains(body, `"scheduled_at": null`) || strings.Contains(body, `"started_at": null`) {
		t.Fatalf("send now = %d %s", code, body)
	}
	if b := get(); b["scheduled_at"] != nil || b["started_at"] == nil || b["validity"] != "3h" {
		t.Fatalf("after send now: %v", b)
	}
	log, err := m.DB.AuditLog(id)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range log {
		actions = append(actions, e.Action)
	}
	if strings.Join(actions, ",") != "schedule,validity,send" || log[1].Detail != "validity default -> 3h" {
		t.Fatalf("audit = %+v", log)
	}
}

// TestPastDateStartAudited: a file dated in the past starts sending at
// once, with a Started time and a system entry saying why.
func TestPastDateStartAudited(t *testing.T) {
	m := MustRunMain(t, testConfig(t.TempDir()))
	upload(t, m.FTP.Addr(), "pasado.csv", csvFile("2020-01-01 09:00", 3))
	b := broadcastOf(t, m, "pasado.csv")
	var got *campaignd.Broadcast
	testenv.Eventually(t, 10*time.Second, "a Started time", func() bool {
		var err error
		got, err = m.DB.Broadcast(b.ID)
		return err == nil && !got.StartedAt.IsZero()
	})
	log, err := m.DB.AuditLog(b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) == 0 || log[0].User != "system" || log[0].Action != "start" || !strings.Contains(log[0].Detail, "had passed when the file was ingested") {
		t.Fatalf("audit = %+v", log)
	}
}
