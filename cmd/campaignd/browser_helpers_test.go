package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"campaignd/internal/testenv"
)

// browser is a headless Debian Chromium driven by chromedp for one test;
// the browser is killed (and waited for) when the test ends, even on failure.
type browser struct {
	t   *testing.T
	ctx context.Context
}

// newBrowser starts Chromium with the flags the tests share, extra ones
// after them, every step bounded by timeout. It skips (fails in CI) when
// Chromium is missing.
func newBrowser(t *testing.T, timeout time.Duration, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	chromium := ""
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			chromium = p
		}
	}
	if chromium == "" {
		testenv.Missing(t, "chromium not installed: apt-get install chromium")
	}
	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	ctx, cancel := context.WithTimeout(tab, timeout)
	t.Cleanup(cancel)
	return &browser{t: t, ctx: ctx}
}

// text is the text of the first element matching sel, spaces collapsed
// ("" when there is none).
func (b *browser) text(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||""`, sel)))
	if err != nil {
		b.t.Fatal(err)
	}
	return strings.Join(strings.Fields(v), " ")
}

// run performs steps, failing the test on the first error.
func (b *browser) run(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatal(err)
	}
}

// navigate opens url, retrying a navigation the page itself aborted (a
// redirect or an htmx swap still under way).
func (b *browser) navigate(url string) {
	b.t.Helper()
	for i := 0; ; i++ {
		err := chromedp.Do(b.ctx, chromedp.Navigate(url))
		if err == nil {
			return
		} else if i == 4 || !strings.Contains(err.Error(), "ERR_ABORTED") {
			b.t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
