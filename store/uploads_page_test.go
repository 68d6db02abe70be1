package store_test

import (
	"fmt"
	"testing"
	"time"

	"campaignd"
	"campaignd/store"
)

// TestUploadsPage: the paged listing reads only the page and keeps only the
// first errors of each upload; the errors of one upload are paged.
func TestUploadsPage(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		var ids []uint64
		for i := range 7 {
			u := &campaignd.Upload{Path: fmt.Sprintf("/f%d.csv", i), FileName: fmt.Sprintf("f%d.csv", i), ReceivedAt: time.Now()}
			if _, err := db.CreateUpload(u); err != nil {
				t.Fatal(err)
			}
			for j := range i * 100 {
				u.Errors = append(u.Errors, campaignd.FileError{Line: j + 2, Column: "telefono", Value: fmt.Sprint(j), Error: "invalid recipient"})
			}
			u.ErrorCount = len(u.Errors) + 5
			u.Outcome, u.ResultPath = campaignd.UploadRejected, "rejected/"+u.FileName
			if err := db.RejectUpload(u); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, u.ID)
		}
		list, total, err := db.UploadsPage(2, 3, 4)
		if err != nil {
			t.Fatal(err)
		}
		if total != 7 || len(list) != 3 {
			t.Fatalf("total %d, page of %d", total, len(list))
		}
		for k, u := range list {
			i := 6 - 2 - k // newest first
			if u.ID != ids[i] || u.FileName != fmt.Sprintf("f%d.csv", i) || u.ResultPath != "rejected/"+u.FileName ||
				u.Outcome != campaignd.UploadRejected || u.ErrorCount != i*100+5 {
				t.Errorf("page[%d] = %+v", k, u)
			}
			if len(u.Errors) != min(4, i*100) || (len(u.Errors) > 0 && u.Errors[0].Line != 2) {
				t.Errorf("page[%d]: %d errors, first %+v", k, len(u.Errors), u.Errors)
			}
		}
		if list, total, err := db.UploadsPage(10, 3, 4); err != nil || total != 7 || len(list) != 0 {
			t.Errorf("past the end: %d %d %v", len(list), total, err)
		}

		u6, n, err := db.UploadErrors(ids[6], 590, 50)
		if err != nil || n != 600 || len(u6.Errors) != 10 || u6.Errors[0].Line != 592 || u6.Errors[9].Line != 601 || u6.FileName != "f6.csv" {
			t.Errorf("errors page: n=%d %v %+v", n, err, u6)
		}
		if u0, n, err := db.UploadErrors(ids[0], 0, 50); err != nil || n != 0 || len(u0.Errors) != 0 {
			t.Errorf("no errors: %d %v %v", n, u0, err)
		}
		if _, _, err := db.UploadErrors(999, 0, 5); campaignd.ErrorCode(err) != campaignd.ENOTFOUND {
			t.Errorf("unknown upload: %v", err)
		}
		u, err := db.UploadSummary(ids[5], 2)
		if err != nil || len(u.Errors) != 2 || u.FileName != "f5.csv" || u.ErrorCount != 505 {
			t.Errorf("summary: %+v %v", u, err)
		}
	})
}
