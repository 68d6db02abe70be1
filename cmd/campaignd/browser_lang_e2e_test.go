package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"campaignd/smpp"
)

// TestBrowserMainFlowInBothLanguages walks the main flow — a real FTP upload
// with a bad row, the list, the broadcast page with its skipped row, Send,
// the results, the Files page — once in Spanish (the default, chosen in the
// header) and once in English, against the real Main.
func TestBrowserMainFlowInBothLanguages(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests skipped in -short mode")
	}
	words := map[string][]string{
		// list, status pending, skipped error, completed, results heading, files outcome, zone note
		"es": {"Campañas por archivo", "pendiente", "destinatario inválido", "completada", "Resultados por estado final", "aceptado", "Las horas se muestran en America/Mexico_City"},
		"en": {"Broadcasts by File", "pending", "invalid recipient", "completed", "Results by final status", "accepted", "Times are shown in America/Mexico_City"},
	}
	// validity: the error for 16 days, the confirmation for 90 minutes.
	validity := map[string][]string{
		"es": {"La vigencia 16d está fuera de los límites", "Vigencia fijada en 1h30m"},
		"en": {"Validity 16d is out of bounds", "Validity set to 1h30m"},
	}
	for _, lang := range []string{"es", "en"} {
		t.Run(lang, func(t *testing.T) {
			w := words[lang]
			var mu sync.Mutex
			var validities []string // validity_period of each submit_sm
			sim := smpp.NewSimulator(smpp.SimOptions{Listen: "127.0.0.1:0", DeliveredPercent: 100, OnSubmit: func(s smpp.SimSubmit) {
				mu.Lock()
				validities = append(validities, s.Validity)
				mu.Unlock()
			}})
			if err := sim.Open(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sim.Close() })
			c := testConfig(t.TempDir())
			c.SMPP.Addr = sim.Addr()
			c.Ingest.MaxInvalidPercent = 50 // one bad row of three is shown, not a reject
			m := MustRunMain(t, c)
			name := "navidad_" + lang + ".csv"
			upload(t, m.FTP.Addr(), name, "telefono;mensaje;campana\n5511112222;Hola {campana};Navidad\n12345;Hola {campana};Navidad\n5533334444;Hola {campana};Navidad\n")
			b := broadcastOf(t, m, name)

			br := newBrowser(t, 90*time.Second, chromedp.Flag("lang", "en-US"))
			text, run, navigate := br.text, br.run, br.navigate
			base := webBase(m)
			waitText := func(sel, want string) {
				t.Helper()
				deadline := time.Now().Add(40 * time.Second)
				for !strings.Contains(text(sel), want) {
					if time.Now().After(deadline) {
						t.Fatalf("%s shows %q, want %q", sel, text(sel), want)
					}
					time.Sleep(200 * time.Millisecond)
				}
			}
			run(chromedp.Navigate(base+"/login"),
				chromedp.SendKeys(chromedp.CSS("#username"), testAdmin),
				chromedp.SendKeys(chromedp.CSS("#password"), testPass),
				chromedp.Click(chromedp.CSS("#login")),
				chromedp.WaitVisible(chromedp.CSS("header.top")),
				chromedp.Click(chromedp.CSS("#lang-"+lang)),
				chromedp.WaitVisible(chromedp.CSS("#lang-"+lang+"[aria-pressed=true]")))
			navigate(base + "/broadcasts")
			waitText("main", w[0])
			if list := text("#broadcasts"); !strings.Contains(list, name) || !strings.Contains(list, w[1]) {
				t.Fatalf("list lacks the upload as %q:\n%s", w[1], list)
			}
			if z := text("#zone"); !strings.Contains(z, w[6]) {
				t.Errorf("zone note %q, want %q", z, w[6])
			}
			navigate(fmt.Sprintf("%s/broadcasts/%d", base, b.ID))
			if p := text("#preview"); !strings.Contains(p, "Hola Navidad") || !strings.Contains(p, "525511112222") {
				t.Fatalf("preview lacks the text or the number as sent: %q", p)
			}
			if s := text("#skipped"); !strings.Contains(s, w[2]) {
				t.Errorf("skipped rows %q lack %q", s, w[2])
			}
			// The validity period: refused out of bounds, then set; each
			// submit_sm carries it.
			if v := text("#validity"); !strings.Contains(v, "2d") {
				t.Errorf("validity shown %q, want the default 2d", v)
			}
			run(chromedp.SetValue(chromedp.CSS("#validity-input"), "16d"), chromedp.Click(chromedp.CSS("#btn-validity")))
			waitText("#flash", validity[lang][0])
			run(chromedp.SetValue(chromedp.CSS("#validity-input"), "90m"), chromedp.Click(chromedp.CSS("#btn-validity")))
			waitText("#flash", validity[lang][1])
			waitText("#validity", "1h30m")
			run(chromedp.Click(chromedp.CSS("#on-date")), chromedp.Click(chromedp.CSS("#btn-send")))
			waitText("#status", w[3])
			mu.Lock()
			if len(validities) != 2 {
				t.Errorf("%d submits, want 2", len(validities))
			}
			for _, v := range validities {
				if v != "000000013000000R" {
					t.Errorf("submit_sm validity %q, want 90 minutes (000000013000000R)", v)
				}
			}
			mu.Unlock()
			waitText("#panel", w[4])
			if a := text("#audit"); !strings.Contains(a, testAdmin) {
				t.Errorf("audit trail lacks the send: %q", a)
			}
			navigate(base + "/files")
			waitText("#files", w[5])
		})
	}
}

// TestAuditAndTombstoneEndToEnd: with the real store, an action shows on
// the audit API, and a deleted broadcast's page is a tombstone with its
// trail, linked from the Files page.
func TestAuditAndTombstoneEndToEnd(t *testing.T) {
	c := testConfig(t.TempDir())
	c.Web.Language = "en"
	m := MustRunMain(t, c)
	upload(t, m.FTP.Addr(), "borrar.csv", "telefono;mensaje\n5511112222;Hola\n")
	b := broadcastOf(t, m, "borrar.csv")
	req, _ := http.NewRequest("DELETE", fmt.Sprintf("%s/api/v1/broadcasts/%d", webBase(m), b.ID), nil)
	req.SetBasicAuth(testAdmin, testPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("delete: %v %v", err, resp)
	}
	resp.Body.Close()
	req, _ = http.NewRequest("GET", fmt.Sprintf("%s/api/v1/audit?broadcast=%d", webBase(m), b.ID), nil)
	req.SetBasicAuth(testAdmin, testPass)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"action": "delete"`) || !strings.Contains(string(body), `"user": "`+testAdmin+`"`) {
		t.Fatalf("audit = %d %s", resp.StatusCode, body)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	if resp, err = client.PostForm(webBase(m)+"/login", url.Values{"username": {testAdmin}, "password": {testPass}}); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp, err = client.Get(fmt.Sprintf("%s/broadcasts/%d", webBase(m), b.ID)); err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone || !strings.Contains(string(body), "deleted") || !strings.Contains(string(body), "borrar") {
		t.Fatalf("tombstone = %d:\n%s", resp.StatusCode, body)
	}
}
