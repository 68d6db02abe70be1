package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserSeesUploadAndSends drives headless Chromium against the real
// console of the real Main: a file uploaded over FTP appears in Broadcasts by
// File; the operator opens it, chooses On Date → Send Now → Send, and the
// page shows it sending and then completed, without a reload.
func TestBrowserSeesUploadAndSends(t *testing.T) {
	m := MustRunMain(t, testConfig(t.TempDir()))
	upload(t, m.FTP.Addr(), "navidad.csv", "telefono;mensaje;tarjeta;campana\n5511112222;Hola {campana};1;Navidad\n5533334444;Hola {campana};2;Navidad\n")
	b := broadcastOf(t, m, "navidad.csv")

	br := newBrowser(t, 60*time.Second)
	text, run := br.text, br.run
	base := webBase(m)
	run(chromedp.Navigate(base+"/login"),
		chromedp.SendKeys(chromedp.CSS("#username"), testAdmin),
		chromedp.SendKeys(chromedp.CSS("#password"), testPass),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("header.top")),
		chromedp.Navigate(base+"/broadcasts"))
	if list := text("main"); !strings.Contains(list, "Navidad") || !strings.Contains(list, "pending") {
		t.Fatalf("Broadcasts by File does not show the upload:\n%s", list)
	}
	run(chromedp.Navigate(fmt.Sprintf("%s/broadcasts/%d", base, b.ID)))
	if p := text("#preview"); !strings.Contains(p, "Hola Navidad") {
		t.Fatalf("preview not personalised: %q", p)
	}
	run(chromedp.Click(chromedp.CSS("#on-date")), chromedp.Click(chromedp.CSS("#btn-send")))
	deadline := time.Now().Add(30 * time.Second)
	for text("#status") != "completed" {
		if time.Now().After(deadline) {
			t.Fatalf("status %q, want completed without a reload", text("#status"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := getBroadcast(t, m, b.ID); got.Counts.Submitted+got.Counts.Delivered != 2 {
		t.Fatalf("counts = %+v", got.Counts)
	}
}
