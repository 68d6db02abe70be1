package store_test

import (
	"fmt"
	"testing"
	"time"

	"campaignd"
	"campaignd/store"
)

func TestSuppressionList(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		first := campaignd.Suppression{Number: "525512345678", Reason: campaignd.SuppressReply, Source: "BAJA", By: "sms"}
		if added, err := db.Suppress(first); err != nil || !added {
			t.Fatalf("Suppress = %v, %v; want added", added, err)
		}
		// A second entry for the same number keeps the first reason.
		if added, err := db.Suppress(campaignd.Suppression{Number: "525512345678", Reason: campaignd.SuppressImport}); err != nil || added {
			t.Fatalf("Suppress again = %v, %v; want not added", added, err)
		}
		got, err := db.Suppressed("525512345678")
		if err != nil || got == nil || got.Reason != campaignd.SuppressReply || got.Source != "BAJA" || got.At.IsZero() {
			t.Fatalf("Suppressed = %+v, %v", got, err)
		}
		if ok, err := db.IsSuppressed("525512345678"); !ok || err != nil {
			t.Fatalf("IsSuppressed = %v, %v", ok, err)
		}
		if ok, err := db.IsSuppressed("525500000000"); ok || err != nil {
			t.Fatalf("IsSuppressed(other) = %v, %v", ok, err)
		}
		if n, _ := db.SuppressionCount(); n != 1 {
			t.Fatalf("count = %d, want 1", n)
		}
		old, err := db.Unsuppress("525512345678")
		if err != nil || old == nil || old.Reason != campaignd.SuppressReply {
			t.Fatalf("Unsuppress = %+v, %v", old, err)
		}
		if old, err := db.Unsuppress("525512345678"); err != nil || old != nil {
			t.Fatalf("Unsuppress twice = %+v, %v", old, err)
		}
		if ok, _ := db.IsSuppressed("525512345678"); ok {
			t.Fatal("still suppressed after Unsuppress")
		}
		if n, _ := db.SuppressionCount(); n != 0 {
			t.Fatalf("count = %d, want 0", n)
		}
		if _, err := db.Suppress(campaignd.Suppression{}); campaignd.ErrorCode(err) != campaignd.EINVALID {
			t.Fatalf("empty number: %v", err)
		}
	})
}

func TestSuppressManyAndPages(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		const n = 12_345 // more than one batch
		ss := make([]campaignd.Suppression, n)
		for i := range ss {
			ss[i] = campaignd.Suppression{Number: fmt.Sprintf("5255%08d", i), Reason: campaignd.SuppressImport}
		}
		added, err := db.SuppressMany(ss)
		if err != nil || added != n {
			t.Fatalf("SuppressMany = %d, %v", added, err)
		}
		// Overlapping re-import adds only the new ones.
		more := append(ss[n-10:n:n], campaignd.Suppression{Number: "525599999999", Reason: campaignd.SuppressImport})
		if added, err := db.SuppressMany(more); err != nil || added != 1 {
			t.Fatalf("re-import added %d, %v; want 1", added, err)
		}
		if c, _ := db.SuppressionCount(); c != n+1 {
			t.Fatalf("count %d, want %d", c, n+1)
		}
		// Page through everything: every number once, in order.
		seen, after, pages := 0, "", 0
		prev := ""
		for {
			page, next, err := db.Suppressions("", after, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range page {
				if s.Number <= prev {
					t.Fatalf("out of order: %s after %s", s.Number, prev)
				}
				prev = s.Number
			}
			seen += len(page)
			pages++
			if next == "" {
				break
			}
			after = next
		}
		if seen != n+1 || pages != 13 {
			t.Fatalf("paged %d numbers in %d pages, want %d in 13", seen, pages, n+1)
		}
		// A prefix search.
		page, next, err := db.Suppressions("52550000001", "", 100)
		if err != nil || len(page) != 10 || next != "" {
			t.Fatalf("prefix search: %d, %q, %v", len(page), next, err)
		}
	})
}

func TestReplies(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		for i := 0; i < 25; i++ {
			if err := db.SaveMO(&campaignd.MO{From: fmt.Sprintf("5255%08d", i), Text: "hola", At: time.Unix(int64(i), 0)}); err != nil {
				t.Fatal(err)
			}
		}
		var ids []uint64
		before := uint64(0)
		for {
			page, next, err := db.MOs(before, 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range page {
				ids = append(ids, m.ID)
			}
			if next == 0 {
				break
			}
			before = next
		}
		if len(ids) != 25 || ids[0] != 25 || ids[24] != 1 {
			t.Fatalf("ids %v: want 25..1", ids)
		}
	})
}

// The view answers the same whether the list is held in memory or looked
// up in the store, for listed and unlisted numbers of every length.
func TestSuppressionView(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		v, err := db.SuppressionView()
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := v.Has([]byte("525512345678")); ok {
			t.Fatal("empty list has a number")
		}
		v.Close()
		numbers := []string{"525512345678", "14155550100", "525500000000", "447911123456"}
		for _, n := range numbers {
			db.Suppress(campaignd.Suppression{Number: n, Reason: campaignd.SuppressImport})
		}
		v, err = db.SuppressionView()
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		for _, n := range numbers {
			if ok, err := v.Has([]byte(n)); !ok || err != nil {
				t.Errorf("%s: %v, %v", n, ok, err)
			}
		}
		for _, n := range []string{"525512345679", "5255123456780", "1415555010", "", "52551234567x"} {
			if ok, err := v.Has([]byte(n)); ok || err != nil {
				t.Errorf("%q: %v, %v", n, ok, err)
			}
		}
	})
}

// A reply and its suppression are written together; a repeated keyword
// reply is kept but adds nothing to the list.
func TestSaveReply(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		m := &campaignd.MO{From: "525512345678", Text: "BAJA", Keyword: "BAJA"}
		s := &campaignd.Suppression{Number: "525512345678", Reason: campaignd.SuppressReply, Source: "BAJA", By: "sms"}
		if added, err := db.SaveReply(m, s); err != nil || !added || m.ID != 1 || m.At.IsZero() {
			t.Fatalf("SaveReply = %v, %v, %+v", added, err, m)
		}
		if got, _ := db.Suppressed("525512345678"); got == nil || !got.At.Equal(m.At) {
			t.Fatalf("entry %+v", got)
		}
		again := &campaignd.MO{From: "525512345678", Text: "baja", Keyword: "BAJA"}
		if added, err := db.SaveReply(again, &campaignd.Suppression{Number: "525512345678", Reason: campaignd.SuppressReply}); err != nil || added {
			t.Fatalf("again = %v, %v", added, err)
		}
		if added, err := db.SaveReply(&campaignd.MO{From: "525500000001", Text: "hola"}, nil); err != nil || added {
			t.Fatalf("no keyword = %v, %v", added, err)
		}
		if n, _ := db.SuppressionCount(); n != 1 {
			t.Fatalf("count %d", n)
		}
		if mos, _, _ := db.MOs(0, 0); len(mos) != 3 || mos[0].Text != "hola" {
			t.Fatalf("replies %+v", mos)
		}
	})
}

func TestRecentAudit(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		for i := range 30 {
			db.Audit(campaignd.AuditEntry{At: time.Unix(int64(1000+i), 0), User: "ana", Action: fmt.Sprintf("a%d", i)})
		}
		db.Audit(campaignd.AuditEntry{At: time.Unix(5000, 0), BroadcastID: 1, Action: "send"})
		got, err := db.RecentAudit(0, 20)
		if err != nil || len(got) != 20 || got[0].Action != "a29" || got[19].Action != "a10" {
			t.Fatalf("RecentAudit = %d entries, %v: %+v", len(got), err, got)
		}
	})
}

// BenchmarkIsSuppressed is the engine's check before each submit, on an
// on-disk store holding 200,000 numbers: a miss (the common case) and a hit.
func BenchmarkIsSuppressed(b *testing.B) {
	db, err := store.Open(store.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	ss := make([]campaignd.Suppression, 200_000)
	for i := range ss {
		ss[i] = campaignd.Suppression{Number: fmt.Sprintf("5255%08d", i*5), Reason: campaignd.SuppressImport}
	}
	if _, err := db.SuppressMany(ss); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		num  func(i int) string
	}{
		{"miss", func(i int) string { return fmt.Sprintf("5255%08d", (i%200_000)*5+1) }},
		{"hit", func(i int) string { return fmt.Sprintf("5255%08d", (i%200_000)*5) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			nums := make([]string, 4096)
			for i := range nums {
				nums[i] = tc.num(i * 37)
			}
			i := 0
			for b.Loop() {
				if _, err := db.IsSuppressed(nums[i%len(nums)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
