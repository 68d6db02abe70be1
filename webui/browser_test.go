package webui

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"campaignd"
	"campaignd/internal/testenv"
)

// The browser tests drive Debian's chromium against the console served on
// 127.0.0.1 with the fake backend. They skip when chromium is missing.

func chromiumPath(tb testing.TB) string {
	tb.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	testenv.Missing(tb, "chromium not installed: apt-get install chromium")
	return ""
}

// MustStartBrowser starts a headless chromium for the test and returns its
// context; the browser is killed when the test ends, even on failure.
func MustStartBrowser(tb testing.TB) context.Context {
	tb.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(tb)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	tb.Cleanup(func() {
		cancelCtx()
		cancelAlloc() // kills the browser process and waits for it
	})
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// ui is one browser tab on one console.
type ui struct {
	t    *testing.T
	ctx  context.Context
	base string
	fake *fakeBackend
}

// newUI serves a fresh console and opens a new tab on it.
func newUI(t *testing.T, browser context.Context) *ui {
	t.Helper()
	s, fake := MustOpenServer(t, func(o *Options) { o.LoginDelay = 10 * time.Millisecond })
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	tab, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(tab, 45*time.Second)
	t.Cleanup(cancelT)
	if err := chromedp.Do(tab); err != nil { // open the tab without the timeout
		t.Fatal(err)
	}
	return &ui{t: t, ctx: ctx, base: "http://" + s.Addr(), fake: fake}
}

func (u *ui) do(steps ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	if err := chromedp.Do(u.ctx, steps...); err != nil {
		u.t.Fatalf("browser: %v", err)
	}
}

func (u *ui) open(path string) { u.t.Helper(); u.do(chromedp.Navigate(u.base + path)) }

func (u *ui) click(sel string) { u.t.Helper(); u.do(chromedp.Click(chromedp.CSS(sel))) }

// eval runs JavaScript in the page and decodes its (awaited) result.
// A page that is navigating (a form just submitted) has no context to run
// in for a moment; eval tries again for up to 5 s rather than fail.
func eval[T any](u *ui, js string) T {
	u.t.Helper()
	for try := 0; ; try++ {
		v, err := chromedp.Run(u.ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
		if err == nil {
			return v
		}
		if try < 50 && navigating(err) {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		u.t.Fatalf("eval %s: %v", js, err)
	}
}

func navigating(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "navigated or closed") || strings.Contains(msg, "Cannot find context") ||
		strings.Contains(msg, "Execution context was destroyed")
}

// text is the trimmed text of the first element matching sel ("" if none).
func (u *ui) text(sel string) string {
	u.t.Helper()
	return strings.TrimSpace(eval[string](u, fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel)))
}

// visible reports whether sel matches a rendered element.
func (u *ui) visible(sel string) bool {
	u.t.Helper()
	return eval[bool](u, fmt.Sprintf(`(e => !!e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden")(document.querySelector(%q))`, sel))
}

// waitFor polls cond until it holds or the deadline passes.
func (u *ui) waitFor(what string, cond func() bool) {
	u.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			u.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitText waits until sel's text contains want.
func (u *ui) waitText(sel, want string) {
	u.t.Helper()
	var got string
	u.waitFor(fmt.Sprintf("%s to show %q", sel, want), func() bool {
		got = u.text(sel)
		return strings.Contains(got, want)
	})
}

func (u *ui) login(user, password string) {
	u.t.Helper()
	u.open("/login")
	u.do(
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
	)
	u.click("#login")
}

func (u *ui) loginAs(user string) {
	u.t.Helper()
	u.login(user, testPasswords[user])
	u.waitFor("the console after login", func() bool { return u.visible("header.top") })
}

// acceptConfirms makes window.confirm (hx-confirm) answer yes.
func (u *ui) acceptConfirms() { u.t.Helper(); eval[bool](u, `window.confirm = () => true; true`) }

// fetchStatus posts from the page with the page's cookies, as a forged or
// scripted request would, and returns the status and body.
func (u *ui) fetch(method, path string, headers map[string]string) (int, string) {
	u.t.Helper()
	if headers == nil {
		headers = map[string]string{}
	}
	h, _ := json.Marshal(headers)
	res := eval[[]any](u, fmt.Sprintf(`fetch(%q, {method: %q, headers: %s}).then(r => r.text().then(t => [r.status, t]))`, path, method, h))
	return int(res[0].(float64)), res[1].(string)
}

func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests skipped in -short mode")
	}
	browser := MustStartBrowser(t)

	t.Run("login and list", func(t *testing.T) {
		u := newUI(t, browser)
		u.open("/broadcasts")
		u.waitFor("login page", func() bool { return u.visible("#username") }) // redirected
		u.loginAs("admin")
		if loc := eval[string](u, `location.pathname`); loc != "/broadcasts" {
			t.Errorf("after login at %s", loc)
		}
		rows := eval[int](u, `document.querySelectorAll("#broadcasts tbody tr").length`)
		if rows != 7 {
			t.Errorf("%d rows, want 7", rows)
		}
		first := u.text("#broadcasts tbody tr:first-child td:first-child")
		if first != "Encuesta Satisfacción" { // newest first
			t.Errorf("first row %q", first)
		}
		if st := u.text("#b2 .badge"); st != "sending" {
			t.Errorf("broadcast 2 status %q", st)
		}
		// The sending row refreshes itself.
		before := eval[string](u, `document.querySelector("#b2 progress").value + ""`)
		u.waitFor("the sending row's progress to move", func() bool {
			return eval[string](u, `document.querySelector("#b2 progress").value + ""`) != before
		})
		// Filter by status.
		u.do(chromedp.SetValue(chromedp.CSS("#status-filter"), "pending"))
		u.click(".filters button")
		u.waitFor("filtered list", func() bool {
			return eval[int](u, `document.querySelectorAll("#broadcasts tbody tr").length`) == 2
		})
		if !strings.Contains(u.text("#broadcasts"), "Bienvenida Nuevos Socios") {
			t.Error("pending filter lost a pending broadcast")
		}
	})

	t.Run("send now", func(t *testing.T) {
		u := newUI(t, browser)
		u.loginAs("operator")
		u.open("/broadcasts/4")
		if u.visible("#btn-send") || u.visible("#btn-schedule") {
			t.Error("Send/Schedule shown before On Date is chosen")
		}
		if !strings.Contains(u.text("#preview"), "Hola Ana") || !strings.Contains(u.text("#skipped"), "invalid recipient") {
			t.Error("preview or skipped rows missing")
		}
		u.click("#on-date")
		if !u.visible("#btn-send") || u.visible("#btn-schedule") || u.visible("#at") {
			t.Error("Send Now checked: want Send only")
		}
		u.click("#btn-send")
		u.waitText("#flash", "Sending started.")
		u.waitText("#status", "sending")
		if !u.visible("#c-remaining") || !u.visible("#btn-pause") {
			t.Error("sending panel lacks live counts or Pause")
		}
		if !strings.Contains(u.text("#audit"), "operator") {
			t.Error("audit trail not updated in place")
		}
	})

	t.Run("schedule for a date", func(t *testing.T) {
		u := newUI(t, browser)
		u.loginAs("operator")
		u.open("/broadcasts/6")
		u.click("#on-date")
		u.click("#send-now") // uncheck
		if u.visible("#btn-send") || !u.visible("#btn-schedule") || !u.visible("#at") {
			t.Fatal("Send Now unchecked: want the date field and Schedule only")
		}
		at := time.Now().In(mexico).Add(72 * time.Hour).Truncate(time.Minute)
		u.do(chromedp.SetValue(chromedp.CSS("#at"), at.Format(inputLayout)))
		u.click("#btn-schedule")
		want := at.Format("02 Jan 2006 15:04")
		u.waitText("#flash", "Scheduled for "+want+".")
		u.waitText("#status", "scheduled")
		if got := u.text("#scheduled-at"); got != want {
			t.Errorf("scheduled-at %q, want %q", got, want)
		}
		b, _ := u.fake.Broadcast(context.Background(), 6)
		if !b.ScheduledAt.Equal(at) {
			t.Errorf("backend scheduled at %v, want %v (entered in %s)", b.ScheduledAt, at, mexico)
		}
	})

	t.Run("change date and delete", func(t *testing.T) {
		u := newUI(t, browser)
		u.loginAs("operator")
		u.open("/broadcasts/3")
		at := time.Now().In(mexico).Add(5 * 24 * time.Hour).Truncate(time.Minute)
		u.do(chromedp.SetValue(chromedp.CSS("#at"), at.Format(inputLayout)))
		u.click("#btn-schedule")
		u.waitText("#flash", "Scheduled for "+at.Format("02 Jan 2006 15:04"))
		u.waitText("#scheduled-at", at.Format("02 Jan 2006 15:04"))
		u.acceptConfirms()
		u.click("#btn-delete")
		u.waitText("#flash", "Broadcast “Recordatorio Cumpleaños” deleted.")
		u.waitText("#status", "deleted")
		u.open("/broadcasts")
		if strings.Contains(u.text("#broadcasts"), "Recordatorio") {
			t.Error("deleted broadcast still listed")
		}
	})

	t.Run("pause and resume with live progress", func(t *testing.T) {
		u := newUI(t, browser)
		u.loginAs("operator")
		u.open("/broadcasts/2")
		eval[bool](u, `window.noReload = true; true`)
		remaining := u.text("#c-remaining")
		u.waitFor("the remaining count to fall without a reload", func() bool { return u.text("#c-remaining") != remaining })
		if !strings.Contains(u.text("#rate"), "msg/s") || u.text("#eta") == "—" {
			t.Errorf("rate %q, ETA %q", u.text("#rate"), u.text("#eta"))
		}
		u.click("#btn-pause")
		u.waitText("#flash", "Paused")
		u.waitText("#status", "paused")
		if !u.visible("#btn-resume") || !u.visible("#btn-cancel") || u.visible("#btn-pause") {
			t.Error("paused: want Resume and Cancel")
		}
		paused := u.text("#c-remaining")
		time.Sleep(2500 * time.Millisecond) // longer than a poll: nothing moves while paused
		if got := u.text("#c-remaining"); got != paused {
			t.Errorf("remaining moved while paused: %s → %s", paused, got)
		}
		u.click("#btn-resume")
		u.waitText("#flash", "Resumed.")
		u.waitText("#status", "sending")
		u.waitFor("the remaining count to fall again", func() bool { return u.text("#c-remaining") != paused })
		if !eval[bool](u, `window.noReload === true`) {
			t.Error("the page reloaded")
		}
	})

	t.Run("export CSV", func(t *testing.T) {
		u := newUI(t, browser)
		u.loginAs("viewer")
		u.open("/broadcasts/1")
		u.waitText("#results", "Delivered")
		if got := u.text("#r-delivered"); got != "1,104" {
			t.Errorf("delivered %q", got)
		}
		href := eval[string](u, `document.querySelector("#export").getAttribute("href")`)
		status, body := u.fetch("GET", href, nil)
		if status != 200 || !strings.HasPrefix(body, strings.Join(ExportHeader, ",")+"\n") {
			t.Errorf("export %s: %d %.200q", href, status, body)
		}
		if n := strings.Count(body, "\n"); n != 1201 {
			t.Errorf("export has %d lines, want 1201", n)
		}
	})

	t.Run("viewer sees no actions and is refused", func(t *testing.T) {
		u := newUI(t, browser)
		u.loginAs("viewer")
		for _, path := range []string{"/broadcasts/4", "/broadcasts/3", "/broadcasts/2", "/broadcasts/5", "/reports"} {
			u.open(path)
			if n := eval[int](u, `document.querySelectorAll("main form[method=post], main button").length`); n != 0 {
				t.Errorf("viewer sees %d action controls on %s", n, path)
			}
		}
		u.open("/broadcasts/4")
		csrf := eval[string](u, `document.querySelector('meta[name="csrf-token"]').content`)
		status, body := u.fetch("POST", "/broadcasts/4/send", map[string]string{"X-CSRF-Token": csrf, "HX-Request": "true"})
		if status != 403 || !strings.Contains(body, "Your role may view") {
			t.Errorf("forced POST: %d %q", status, body)
		}
		if st := u.fake.bs[4].b.Status; st != campaignd.StatusPending {
			t.Errorf("status after forced POST %s", st)
		}
	})

	t.Run("refusals are shown in place", func(t *testing.T) {
		u := newUI(t, browser)
		u.loginAs("operator")
		// A POST without the CSRF token is refused.
		u.open("/broadcasts/4")
		status, body := u.fetch("POST", "/broadcasts/4/send", map[string]string{"HX-Request": "true"})
		if status != 403 || !strings.Contains(body, "CSRF") {
			t.Errorf("POST without token: %d %q", status, body)
		}
		// The same through the form, with the token removed from the page.
		eval[bool](u, `document.querySelector('meta[name="csrf-token"]').remove(); document.querySelectorAll('input[name=csrf]').forEach(e => e.remove()); true`)
		u.click("#on-date")
		u.click("#btn-send")
		u.waitText("#flash", "Missing or invalid CSRF token")
		if st := u.fake.bs[4].b.Status; st != campaignd.StatusPending {
			t.Fatalf("status after refused POST %s", st)
		}
		// 409: someone else started the broadcast meanwhile.
		u.open("/broadcasts/4")
		u.fake.setStatus(4, campaignd.StatusSending)
		u.click("#on-date")
		u.click("#btn-send")
		u.waitText("#flash", "This page was out of date: the broadcast is now sending, so it cannot be sent.")
		if !u.visible("#panel") {
			t.Error("the panel was replaced by the error")
		}
		// The page shows the fresh state: its controls are those of a
		// sending broadcast.
		u.waitText("#status", "sending")
		if !u.visible("#btn-pause") || u.visible("#btn-send") {
			t.Error("stale controls kept after the refusal")
		}
	})

	t.Run("wrong password is throttled", func(t *testing.T) {
		u := newUI(t, browser)
		for range 3 {
			u.login("admin", "guess")
			u.waitText("#login-error", "Wrong user name or password.")
		}
		u.login("admin", testPasswords["admin"])
		u.waitText("#login-error", "Too many failed logins.")
		if u.visible("header.top") {
			t.Error("signed in while locked")
		}
	})

	t.Run("reports push again", func(t *testing.T) {
		u := newUI(t, browser)
		u.loginAs("operator")
		u.open("/reports")
		day := time.Now().In(mexico).AddDate(0, 0, -1).Format(time.DateOnly)
		u.waitText("#report-"+day, "failed")
		u.click("#report-" + day + " button")
		dayT, _ := time.Parse(time.DateOnly, day)
		u.waitText("#flash", "Report of "+dayT.Format("02 Jan 2006")+": push pushed.")
		u.waitText("#report-"+day, "pushed")
		status, body := u.fetch("GET", eval[string](u, `document.querySelector("#today-download").getAttribute("href")`), nil)
		if status != 200 || !strings.HasPrefix(body, campaignd.ReportHeader) {
			t.Errorf("today's report: %d %q", status, body)
		}
	})

	t.Run("no script errors or CSP violations", func(t *testing.T) {
		u := newUI(t, browser)
		var mu sync.Mutex
		var problems []string
		cctx, stop := context.WithCancel(u.ctx)
		defer stop()
		msgs := chromedp.Console(cctx)
		go func() {
			for m, err := range msgs {
				if err != nil {
					return
				}
				if m.Type == chromedp.ConsoleError || m.IsException() {
					mu.Lock()
					problems = append(problems, m.String())
					mu.Unlock()
				}
			}
		}()
		u.loginAs("admin")
		for _, p := range []string{"/broadcasts", "/broadcasts/4", "/broadcasts/2", "/broadcasts/1", "/files", "/reports"} {
			u.open(p)
			if !eval[bool](u, `typeof htmx === "object" && htmx.version === "4.0.1"`) {
				t.Errorf("%s: htmx 4.0.1 not loaded", p)
			}
		}
		time.Sleep(2500 * time.Millisecond) // let /broadcasts/… poll once more
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			t.Errorf("console: %s", p)
		}
	})
}

// TestScreenshots writes docs/screenshots/*.png when CAMPAIGND_SCREENSHOTS=1.
func TestScreenshots(t *testing.T) {
	if os.Getenv("CAMPAIGND_SCREENSHOTS") != "1" {
		t.Skip("set CAMPAIGND_SCREENSHOTS=1 to write docs/screenshots")
	}
	browser := MustStartBrowser(t)
	dir := filepath.Join("..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shoot := func(u *ui, name string) {
		png, err := chromedp.Run(u.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	u := newUI(t, browser)
	// The screenshots are in Spanish, as Payback's operators see them.
	u.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders,
			network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": "es-MX,es;q=0.9"}})
		return err
	}))
	u.do(chromedp.EmulateViewport(1280, 860))
	u.open("/login")
	shoot(u, "login")
	u.loginAs("admin")
	for _, shot := range []struct {
		name, path string
		prepare    func()
	}{
		{"broadcasts", "/broadcasts", nil},
		{"pending", "/broadcasts/4", func() { u.click("#on-date"); u.click("#send-now") }},
		{"sending", "/broadcasts/2", nil},
		{"completed", "/broadcasts/1", nil},
		{"files", "/files", nil},
		{"reports", "/reports", nil},
		{"paused", "/broadcasts/5", nil},
		{"cancelled", "/broadcasts/7", nil},
		{"audit", "/audit", nil},
		{"help", "/help", nil},
	} {
		u.open(shot.path)
		if shot.prepare != nil {
			shot.prepare()
		}
		shoot(u, shot.name)
	}
	u.do(chromedp.EmulateViewport(820, 1180)) // a tablet, portrait
	for _, p := range []string{"broadcasts", "broadcasts/2"} {
		u.open("/" + p)
		shoot(u, strings.ReplaceAll(map[string]string{"broadcasts": "broadcasts", "broadcasts/2": "sending"}[p], "/", "-")+"-tablet")
	}
}
