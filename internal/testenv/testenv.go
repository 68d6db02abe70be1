// Package testenv holds the helpers every package's tests share: a store in
// memory or on disk (OpenStore, OpenStoreOnDisk), a manual clock (Clock), free
// ports, waiting on a condition (Eventually, Wait), and what a test does when
// a tool it needs (chromium, vsftpd, curl, promtool) is missing: skip with the
// reason on a developer's machine, fail in CI, where .ci/run installs
// everything and sets CAMPAIGND_REQUIRE_ALL=1 so that nothing is silently
// skipped.
package testenv

import (
	"os"
	"testing"
	"time"
)

// Missing skips the test with msg, or fails it when CAMPAIGND_REQUIRE_ALL is
// set.
func Missing(tb testing.TB, msg string) {
	tb.Helper()
	if os.Getenv("CAMPAIGND_REQUIRE_ALL") != "" {
		tb.Fatal("required in CI: " + msg)
	}
	tb.Skip(msg)
}

// Eventually polls cond every few milliseconds until it holds, failing the
// test if it does not within d. Tests wait on conditions, never on sleeps.
func Eventually(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// WaitTimeout is how long Wait polls: generous, since it is reached only when
// the test is failing and the machine may be loaded.
const WaitTimeout = 10 * time.Second

// Wait is Eventually with WaitTimeout.
func Wait(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	Eventually(tb, WaitTimeout, what, cond)
}
