package store_test

import (
	"testing"
	"time"

	"campaignd"
)

func TestReports(t *testing.T) {
	db := MustOpenDB(t)
	if _, err := db.Report("20261121"); campaignd.ErrorCode(err) != campaignd.ENOTFOUND {
		t.Fatalf("Report before save: err = %v, want not found", err)
	}
	at := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	for _, day := range []string{"2026-11-21", "2026-11-19", "2026-11-20"} {
		r := &campaignd.Report{Day: day, FileName: "r.csv", Rows: 3, ProducedAt: at, PushState: campaignd.PushPending}
		if err := db.SaveReport(r); err != nil {
			t.Fatal(err)
		}
	}
	r, err := db.Report("2026-11-20")
	if err != nil || r.Day != "2026-11-20" || r.Rows != 3 || !r.ProducedAt.Equal(at) {
		t.Fatalf("Report = %+v, %v", r, err)
	}
	r.PushState, r.Attempts = campaignd.PushDone, 2
	if err := db.SaveReport(r); err != nil {
		t.Fatal(err)
	}
	if r, _ := db.Report("20261120"); r.PushState != campaignd.PushDone || r.Attempts != 2 {
		t.Fatalf("after update: %+v", r)
	}
	all, err := db.Reports(0)
	if err != nil || len(all) != 3 || all[0].Day != "2026-11-21" || all[2].Day != "2026-11-19" {
		t.Fatalf("Reports(0) = %v, %v; want newest first", all, err)
	}
	if last, _ := db.Reports(1); len(last) != 1 || last[0].Day != "2026-11-21" {
		t.Fatalf("Reports(1) = %v", last)
	}
	for _, bad := range []string{"", "2026-11", "2026x1121", "../../x"} {
		if err := db.SaveReport(&campaignd.Report{Day: bad}); campaignd.ErrorCode(err) != campaignd.EINVALID {
			t.Errorf("SaveReport(%q) err = %v, want invalid", bad, err)
		}
	}
}
