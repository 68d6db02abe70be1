package store

import (
	"strings"
	"testing"
	"time"

	"campaignd"
)

// TestSaveJob: attempts are saved on an unfinished job, and saving a job
// that has finished meanwhile does not bring it back.
func TestSaveJob(t *testing.T) {
	db, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	job, err := db.CreateUpload(&campaignd.Upload{Path: "/x.csv", FileName: "x.csv"})
	if err != nil {
		t.Fatal(err)
	}
	job.Attempts, job.RetryAt, job.LastError = 3, time.Unix(1e9, 0), strings.Repeat("e", 2000)
	if err := db.SaveJob(job); err != nil {
		t.Fatal(err)
	}
	jobs, _ := db.Jobs()
	if len(jobs) != 1 || jobs[0].Attempts != 3 || !jobs[0].RetryAt.Equal(time.Unix(1e9, 0)) || len(jobs[0].LastError) > maxLastError+3 {
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
}

// TestIsTooLarge: a record over Badger's value limit is refused with an
// error IsTooLarge recognises (retrying cannot help); others are not.
func TestIsTooLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 65 MB value")
	}
	db, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u := &campaignd.Upload{ID: 1, Errors: []campaignd.FileError{{Value: strings.Repeat("v", 65<<20)}}}
	err = db.SaveUpload(u)
	if err == nil || !IsTooLarge(err) {
		t.Fatalf("SaveUpload of a 65 MB record: %v", err)
	}
	if IsTooLarge(nil) || IsTooLarge(campaignd.Errorf(campaignd.EINTERNAL, "disk full")) {
		t.Fatal("IsTooLarge of other errors")
	}
}
