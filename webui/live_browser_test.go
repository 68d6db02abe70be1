package webui

import (
	"strings"
	"testing"
	"time"

	"campaignd"
)

// liveWords are the texts the live tests wait for, per language.
var liveWords = map[string]map[string]string{
	langEN: {"sending": "sending", "completed": "completed", "cancelled": "cancelled", "stale delete": "This page was out of date: the broadcast is now completed, so it cannot be deleted.",
		"cancelled at": "Cancelled at", "cancelled row": "Cancelled (not sent)", "system": "system", "start": "start", "cancel flash": "Cancelled: the unsent messages will not be sent."},
	langES: {"sending": "enviando", "completed": "completada", "cancelled": "cancelada", "stale delete": "Esta página no estaba al día: la campaña ahora está completada, así que ya no puede ser eliminada.",
		"cancelled at": "Cancelada el", "cancelled row": "Cancelados (no enviados)", "system": "system", "start": "inicio", "cancel flash": "Cancelada: los mensajes no enviados no se enviarán."},
}

// TestBrowserLive: the screens that went stale on their own now follow
// the broadcast, in both languages, without a reload.
func TestBrowserLive(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests skipped in -short mode")
	}
	browser := MustStartBrowser(t)
	for _, lang := range []string{langES, langEN} {
		w := liveWords[lang]
		start := func(t *testing.T, path string) *ui {
			u := newUI(t, browser)
			u.loginAs("operator")
			eval[bool](u, `window.beforeSwitch = true; true`)
			u.click("#lang-" + lang)
			u.waitFor("the language switch", func() bool {
				return eval[bool](u, `window.beforeSwitch === undefined && document.readyState === "complete"`) && u.visible("#lang-"+lang+"[aria-pressed=true]")
			})
			u.open(path)
			eval[bool](u, `window.noReload = true; true`)
			return u
		}
		noReload := func(u *ui) {
			if !eval[bool](u, `window.noReload === true`) {
				u.t.Error("the page reloaded")
			}
		}

		t.Run(lang+"/scheduled timer fires", func(t *testing.T) {
			u := start(t, "/broadcasts/3")
			if !u.visible("#btn-delete") || !u.visible("#btn-schedule") {
				t.Fatal("scheduled page lacks its controls")
			}
			now := time.Now()
			u.fake.edit(3, func(b *campaignd.Broadcast) {
				b.Status, b.StartedAt = campaignd.StatusSending, now
			}, campaignd.AuditEntry{At: now, User: "system", BroadcastID: 3, Action: "start", Detail: "scheduled time reached"})
			u.waitText("#status", w["sending"])
			if u.visible("#btn-delete") || u.visible("#btn-schedule") || u.visible("#btn-send") || !u.visible("#btn-pause") {
				t.Error("the fired broadcast kept the controls of a scheduled one")
			}
			if u.text("#started-at") == "" {
				t.Error("no Started time after the timer fired")
			}
			u.waitText("#audit", w["start"])
			noReload(u)
		})

		t.Run(lang+"/delete on a stale page", func(t *testing.T) {
			u := start(t, "/broadcasts/4") // pending: nothing moves it but people
			u.fake.edit(4, func(b *campaignd.Broadcast) {
				b.Status, b.StartedAt, b.CompletedAt = campaignd.StatusCompleted, time.Now(), time.Now()
				b.Counts.Delivered, b.Counts.Queued = b.Counts.Queued, 0
			})
			u.acceptConfirms()
			u.click("#btn-delete")
			u.waitText("#flash", w["stale delete"])
			u.waitText("#status", w["completed"])
			if u.visible("#btn-delete") || !u.visible("#results") {
				t.Error("the refusal did not bring the fresh state")
			}
			noReload(u)
		})

		t.Run(lang+"/paused panel keeps updating", func(t *testing.T) {
			u := start(t, "/broadcasts/5")
			before := u.text("#c-delivered")
			u.fake.edit(5, func(b *campaignd.Broadcast) { b.Counts.Submitted, b.Counts.Delivered = 0, b.Counts.Delivered+12 })
			u.waitFor("a receipt to show on the paused panel", func() bool { return u.text("#c-delivered") != before })
			if got := u.text("#c-delivered"); got != "4,812" {
				t.Errorf("delivered %q, want 4,812", got)
			}
			noReload(u)
		})

		t.Run(lang+"/cancel shows the cancelled row", func(t *testing.T) {
			u := start(t, "/broadcasts/5")
			u.fake.mu.Lock()
			u.fake.slowCancel = true
			u.fake.mu.Unlock()
			u.acceptConfirms()
			u.click("#btn-cancel")
			u.waitText("#flash", w["cancel flash"])
			u.waitText("#status", w["cancelled"])
			if !strings.Contains(u.text("#panel"), w["cancelled at"]) {
				t.Errorf("the cancel time is not labelled %q", w["cancelled at"])
			}
			// The engine settles the queue a moment later.
			u.fake.edit(5, func(b *campaignd.Broadcast) { b.Counts.Cancelled, b.Counts.Queued = b.Counts.Queued, 0 })
			u.waitText("#r-cancelled", "7,000")
			if !strings.Contains(u.text("#results"), w["cancelled row"]) {
				t.Errorf("results lack %q", w["cancelled row"])
			}
			noReload(u)
		})

		t.Run(lang+"/list follows a scheduled broadcast that starts", func(t *testing.T) {
			u := start(t, "/broadcasts")
			u.fake.edit(3, func(b *campaignd.Broadcast) { b.Status, b.StartedAt = campaignd.StatusSending, time.Now() })
			u.waitText("#b3 .badge", w["sending"])
			before := eval[string](u, `document.querySelector("#b3 progress").value + ""`)
			u.waitFor("its progress to move", func() bool {
				return eval[string](u, `document.querySelector("#b3 progress").value + ""`) != before
			})
			noReload(u)
		})
	}
}
