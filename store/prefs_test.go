package store_test

import (
	"testing"

	"campaignd/store"
)

func TestUserPrefs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		if v, err := db.UserPref("ana", "lang"); err != nil || v != "" {
			t.Fatalf("unset pref = %q, %v; want empty", v, err)
		}
		if err := db.SetUserPref("ana", "lang", "en"); err != nil {
			t.Fatal(err)
		}
		// A user whose name prefixes another's must not see its preferences.
		if err := db.SetUserPref("an", "alang", "es"); err != nil {
			t.Fatal(err)
		}
		if v, _ := db.UserPref("ana", "lang"); v != "en" {
			t.Fatalf("ana lang = %q, want en", v)
		}
		if v, _ := db.UserPref("an", "alang"); v != "es" {
			t.Fatalf("an alang = %q, want es", v)
		}
		if err := db.SetUserPref("ana", "lang", ""); err != nil {
			t.Fatal(err)
		}
		if v, _ := db.UserPref("ana", "lang"); v != "" {
			t.Fatalf("removed pref = %q", v)
		}
	})
}
