package webui

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// newOptoutUI is newUI with a suppression backend.
func newOptoutUI(t *testing.T, browser context.Context) (*ui, *fakeSuppressions) {
	t.Helper()
	fs := newFakeSuppressions()
	s, fake := MustOpenServer(t, func(o *Options) { o.LoginDelay = 10 * time.Millisecond; o.Suppressions = fs })
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	tab, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(tab, 45*time.Second)
	t.Cleanup(cancelT)
	if err := chromedp.Do(tab); err != nil {
		t.Fatal(err)
	}
	return &ui{t: t, ctx: ctx, base: "http://" + s.Addr(), fake: fake}, fs
}

func TestBrowserOptouts(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests skipped in -short mode")
	}
	browser := MustStartBrowser(t)

	t.Run("add, search, import, remove", func(t *testing.T) {
		u, fs := newOptoutUI(t, browser)
		u.loginAs("operator")
		u.click(`nav a[href="/suppressions"]`)
		u.waitText("h1", "Opt-outs")
		u.waitText("#suppressions", "The list is empty.")
		u.do(
			chromedp.SendKeys(chromedp.CSS("#add-number"), "55 1234 5678"),
			chromedp.SendKeys(chromedp.CSS("#add-note"), "llamó al centro de atención"),
		)
		u.click("#btn-suppress")
		u.waitText("#flash", "525512345678 is on the suppression list")
		if got := u.text(`#suppressions tr[data-number="525512345678"]`); !strings.Contains(got, "llamó al centro de atención") || !strings.Contains(got, "operator") {
			t.Errorf("row %q", got)
		}
		if got := u.text("#suppression-audit tbody tr:first-child"); !strings.Contains(got, "suppress") || !strings.Contains(got, "operator") {
			t.Errorf("latest change %q", got)
		}
		// An invalid number is refused with a message naming it.
		u.do(chromedp.SendKeys(chromedp.CSS("#add-number"), "55-12"))
		u.click("#btn-suppress")
		u.waitFor("the error page", func() bool {
			return strings.Contains(eval[string](u, `document.body ? document.body.innerText : ""`), "55-12")
		})
		u.open("/suppressions")

		// Import a file through the form.
		list := filepath.Join(t.TempDir(), "repep.csv")
		os.WriteFile(list, []byte("5500000001\n5500000002\nno es numero\n"), 0o644)
		u.do(chromedp.SetUploadFiles(chromedp.CSS("#import-file"), []string{list}))
		u.click("#btn-import")
		u.waitText("#flash", "Imported: 2 numbers added")
		if !strings.Contains(u.text("#import-errors"), "no es numero") {
			t.Error("the invalid line is not shown")
		}
		if n := eval[int](u, `document.querySelectorAll("#suppressions tbody tr[data-number]").length`); n != 3 {
			t.Errorf("%d rows after import, want 3", n)
		}
		// Search by prefix.
		u.do(chromedp.SendKeys(chromedp.CSS("#search-q"), "52550000000"))
		u.click("#btn-search")
		u.waitFor("the search", func() bool {
			return eval[int](u, `document.querySelectorAll("#suppressions tbody tr[data-number]").length`) == 2
		})
		// Remove with a reason; without one the browser does not submit.
		u.open("/suppressions")
		row := `#suppressions tr[data-number="525512345678"]`
		u.click(row + " button")
		if eval[bool](u, `!!document.querySelector('#flash .flash-ok')`) && strings.Contains(u.text("#flash"), "removed") {
			t.Error("removed without a reason")
		}
		u.do(chromedp.SendKeys(chromedp.CSS(row+` input[name="reason"]`), "se volvió a registrar"))
		u.click(row + " button")
		u.waitText("#flash", "525512345678 was removed from the suppression list")
		if _, ok := fs.list["525512345678"]; ok {
			t.Error("still listed")
		}
		// A forged post without the token is refused.
		if code, _ := u.fetch("POST", "/suppressions", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); code != 403 {
			t.Errorf("post without CSRF token = %d", code)
		}
	})

	t.Run("viewer and replies", func(t *testing.T) {
		u, _ := newOptoutUI(t, browser)
		u.loginAs("viewer")
		u.open("/suppressions")
		u.waitText("h1", "Opt-outs")
		if u.visible("#suppress-add") || u.visible("#suppress-import") {
			t.Error("a viewer sees the forms")
		}
		u.click(`nav a[href="/replies"]`)
		u.waitText("h1", "Replies")
		if got := u.text("#replies tbody"); !strings.Contains(got, "¿Cuándo llegan mis puntos?") || !strings.Contains(got, "BAJA") {
			t.Errorf("replies %q", got)
		}
		if n := eval[int](u, `document.querySelectorAll("#replies tbody tr[data-id]").length`); n != 3 {
			t.Errorf("%d replies shown, want 3", n)
		}
	})
}
