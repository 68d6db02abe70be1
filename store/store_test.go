package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"campaignd"
	"campaignd/store"
)

func ingest(t *testing.T, db *store.DB, name string, n int, sha string) *campaignd.Broadcast {
	t.Helper()
	u := &campaignd.Upload{Path: "/" + name, FileName: name, SHA256: sha, ReceivedAt: time.Now()}
	job, err := db.CreateUpload(u)
	if err != nil {
		t.Fatal(err)
	}
	w, err := db.NewBroadcastWriter(job)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		r := campaignd.Row{Line: i + 2, Recipient: fmt.Sprintf("52551%07d", i), RecipientRaw: fmt.Sprint(i), Text: "hola", Encoding: "GSM-7", Segments: 1}
		if err := w.Add(&r); err != nil {
			t.Fatal(err)
		}
	}
	b := &campaignd.Broadcast{Name: name, Status: campaignd.StatusPending, CreatedAt: time.Now()}
	if err := w.Commit(b, &job.Upload); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBroadcastWriter(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		b1 := ingest(t, db, "a.csv", 600, "aa")
		b2 := ingest(t, db, "b.csv", 3, "bb")
		if b1.TrackingBase+600 > b2.TrackingBase {
			t.Fatalf("tracking ids overlap: %d+600 > %d", b1.TrackingBase, b2.TrackingBase)
		}
		if b1.Counts.Total != 600 || b1.Counts.Queued != 600 {
			t.Fatalf("counts = %+v", b1.Counts)
		}
		var got []uint32
		if err := db.Rows(b1.ID, 250, func(idx uint32, r *campaignd.Row) error {
			if r.Line != int(idx)+2 || r.Recipient != fmt.Sprintf("52551%07d", idx) {
				return fmt.Errorf("row %d = %+v", idx, r)
			}
			got = append(got, idx)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != 350 || got[0] != 250 || got[349] != 599 {
			t.Fatalf("rows from 250: %d rows, first %d", len(got), got[0])
		}
		rr := db.NewRowReader()
		if r, err := rr.Row(b1.ID, 513); err != nil || r.Line != 515 {
			t.Fatalf("Row(513) = %+v, %v", r, err)
		}
		if _, err := rr.Row(b1.ID, 600); campaignd.ErrorCode(err) != campaignd.ENOTFOUND {
			t.Fatalf("Row(600) err = %v", err)
		}
		list, n, err := db.Broadcasts(campaignd.BroadcastFilter{Limit: 1})
		if err != nil || n != 2 || len(list) != 1 || list[0].ID != b2.ID {
			t.Fatalf("Broadcasts = %v, %d, %v; want newest first", list, n, err)
		}
		if jobs, _ := db.Jobs(); len(jobs) != 0 {
			t.Fatalf("jobs left: %d", len(jobs))
		}
		if bid, ok, _ := db.DuplicateOf("aa", time.Now().Add(-time.Hour)); !ok || bid != b1.ID {
			t.Fatalf("DuplicateOf = %d, %v", bid, ok)
		}
		if _, ok, _ := db.DuplicateOf("aa", time.Now().Add(time.Hour)); ok {
			t.Fatal("duplicate outside the window")
		}
	})
}

func TestRerunAfterCrashMakesOneBroadcast(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		u := &campaignd.Upload{Path: "/x.csv", FileName: "x.csv"}
		job, err := db.CreateUpload(u)
		if err != nil {
			t.Fatal(err)
		}
		// First run dies after writing some rows.
		w, _ := db.NewBroadcastWriter(job)
		for i := 0; i < 300; i++ {
			w.Add(&campaignd.Row{Line: i + 2, Recipient: "x"})
		}
		w.Add(&campaignd.Row{Line: 999, Recipient: "stale"})
		// Rerun from the recorded job.
		jobs, _ := db.Jobs()
		if len(jobs) != 1 {
			t.Fatalf("jobs = %d", len(jobs))
		}
		w2, err := db.NewBroadcastWriter(jobs[0])
		if err != nil {
			t.Fatal(err)
		}
		w2.Add(&campaignd.Row{Line: 2, Recipient: "y"})
		b := &campaignd.Broadcast{Status: campaignd.StatusPending}
		if err := w2.Commit(b, &jobs[0].Upload); err != nil {
			t.Fatal(err)
		}
		n := 0
		db.Rows(b.ID, 0, func(uint32, *campaignd.Row) error { n++; return nil })
		if n != 1 {
			t.Fatalf("rows = %d, want 1 (stale rows of the crashed run removed)", n)
		}
		// A second commit of the same job must fail: the job is gone.
		if err := w.Commit(&campaignd.Broadcast{}, &job.Upload); err == nil {
			t.Fatal("second commit of one job succeeded")
		}
		if _, n, _ := db.Broadcasts(campaignd.BroadcastFilter{}); n != 1 {
			t.Fatalf("broadcasts = %d, want 1", n)
		}
	})
}

func TestUpdateAndDeleteBroadcast(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		b := ingest(t, db, "a.csv", 10, "")
		_, err := db.UpdateBroadcast(b.ID, func(b *campaignd.Broadcast) error {
			s, err := campaignd.Transition(b.Status, campaignd.ActionPause)
			b.Status = s
			return err
		})
		if campaignd.ErrorCode(err) != campaignd.ECONFLICT {
			t.Fatalf("pause pending: %v", err)
		}
		if err := db.DeleteBroadcast(b.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Broadcast(b.ID); campaignd.ErrorCode(err) != campaignd.ENOTFOUND {
			t.Fatalf("after delete: %v", err)
		}
		if err := db.Rows(b.ID, 0, func(uint32, *campaignd.Row) error { return fmt.Errorf("row left") }); err != nil {
			t.Fatal(err)
		}
		db.Audit(campaignd.AuditEntry{BroadcastID: b.ID, User: "admin", Action: "delete"})
		if log, _ := db.AuditLog(b.ID); len(log) != 1 || log[0].Action != "delete" {
			t.Fatalf("audit = %+v", log)
		}
	})
}

// TestSaveJob: attempts are saved on an unfinished job, and saving a job
// that has finished meanwhile does not bring it back.
func TestSaveJob(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		job, err := db.CreateUpload(&campaignd.Upload{Path: "/x.csv", FileName: "x.csv"})
		if err != nil {
			t.Fatal(err)
		}
		job.Attempts, job.RetryAt, job.LastError = 3, time.Unix(1e9, 0), strings.Repeat("e", 2000)
		if err := db.SaveJob(job); err != nil {
			t.Fatal(err)
		}
		jobs, _ := db.Jobs()
		if len(jobs) != 1 || jobs[0].Attempts != 3 || !jobs[0].RetryAt.Equal(time.Unix(1e9, 0)) || len(jobs[0].LastError) > 500+len("…") {
			t.Fatalf("jobs %+v", jobs)
		}
		u := job.Upload
		u.Outcome = campaignd.UploadRejected
		if err := db.RejectUpload(&u); err != nil {
			t.Fatal(err)
		}
		if err := db.SaveJob(job); err != nil {
			t.Fatal(err)
		}
		if jobs, _ := db.Jobs(); len(jobs) != 0 {
			t.Fatalf("a finished job came back: %+v", jobs)
		}
	})
}
