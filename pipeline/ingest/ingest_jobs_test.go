package ingest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"campaignd"
	"campaignd/internal/testenv"
	"campaignd/store"
)

// uploadVia is upload with the way the upload was completed.
func uploadVia(tb testing.TB, db *store.DB, root, name string, content []byte, via string) *campaignd.Job {
	tb.Helper()
	job := upload(tb, db, root, name, content)
	job.Upload.Via = via
	u, err := db.Upload(job.Upload.ID)
	if err != nil {
		tb.Fatal(err)
	}
	u.Via = via
	if err := db.SaveUpload(u); err != nil {
		tb.Fatal(err)
	}
	return job
}

// TestTruncatedUpload: an upload completed by STOR whose last line is cut
// (no line end, or a quoted field still open) is rejected as truncated and
// makes no broadcast; the same bytes completed by a rename or a marker are
// read as they are; Check warns.
func TestTruncatedUpload(t *testing.T) {
	const good = "phone,message\n5512345678,hola\n5512345679,\"hola, ¿qué tal?\"\n"
	for _, tc := range []struct {
		name, data string
		cut        string // "" when the file is whole
	}{
		{"whole", good, ""},
		{"whole crlf", strings.ReplaceAll(good, "\n", "\r\n"), ""},
		{"whole, blank line at the end", good + "\n", ""},
		{"no line end", good + "5512345670,hol", "the last line (4) has no line end"},
		{"cut after cr", good + "5512345670,hola\r", "the last line (4) has no line end"},
		{"cut in a quoted field", good + "5512345670,\"hola, se", "quoted field opened on line 4"},
		{"cut in a multi-line quoted field", good + "5512345670,\"hola\nsegunda línea", "quoted field opened on line 4"},
		{"cut in a ucs-2 character", good + "5512345670,canción", "the last line (4) has no line end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, via := range []string{campaignd.ViaSTOR, campaignd.ViaRename, campaignd.ViaMarker} {
				db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
				job := uploadVia(t, db, root, "x.csv", []byte(tc.data), via)
				b, err := newIngester(t, db, root, testOptions()).Run(context.Background(), job)
				if err != nil {
					t.Fatalf("%s: %v", via, err)
				}
				u, _ := db.Upload(job.Upload.ID)
				truncated := len(u.Errors) > 0 && strings.HasPrefix(u.Errors[0].Error, "truncated upload: ")
				switch {
				case tc.cut != "" && via == campaignd.ViaSTOR:
					if b != nil || !truncated || !strings.Contains(u.Errors[0].Error, tc.cut) {
						t.Fatalf("%s: broadcast %v, errors %+v", via, b, u.Errors)
					}
					if !strings.Contains(readFile(t, filepath.Join(root, "rejected", "x.csv.errors.csv")), "truncated upload") {
						t.Errorf("errors file does not say truncated")
					}
					if countBroadcasts(t, db) != 0 {
						t.Error("a broadcast was stored")
					}
				case tc.cut != "" && strings.Contains(tc.cut, "quoted"):
					// Not STOR: an open quote is still broken quoting.
					if b != nil || truncated {
						t.Fatalf("%s: broadcast %v, errors %+v", via, b, u.Errors)
					}
				default:
					if b == nil || truncated {
						t.Fatalf("%s: broadcast %v, errors %+v", via, b, u.Errors)
					}
				}
			}
			res := checkBytes(t, []byte(tc.data), nil)
			if warned := len(res.Warnings) > 0; warned != (tc.cut != "" && !strings.Contains(tc.cut, "quoted")) {
				t.Errorf("check warnings %q", res.Warnings)
			}
		})
	}
}

// flakyDB fails NewBroadcastWriter while fail > 0 (a store or disk fault
// that passes).
type flakyDB struct {
	*store.DB
	mu   sync.Mutex
	fail int
	err  error // nil: "disk I/O error"
}

func (f *flakyDB) NewBroadcastWriter(job *campaignd.Job) (campaignd.RowWriter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		if f.err != nil {
			return nil, f.err
		}
		return nil, errors.New("disk I/O error")
	}
	return f.DB.NewBroadcastWriter(job)
}

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// TestAttemptTransient: a job failing for a reason that passes is tried
// again after pauses doubling from RetryBase, its count kept in the store
// (a restart does not reset it), and it succeeds once the fault is gone;
// past MaxAttempts it ends as a rejected upload with the last error.
func TestAttemptTransient(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fails int
		ok    bool
	}{
		{"passes after 3 failures", 3, true},
		{"passes on the last attempt", DefaultMaxAttempts - 1, true},
		{"never passes", 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
			flaky := &flakyDB{DB: db, fail: tc.fails}
			clock := &testClock{t: testNow}
			ev := &recordedEvents{}
			o := testOptions()
			o.Now, o.Events = clock.Now, ev
			upload(t, db, root, "x.csv", fixture(t, "pending-example.csv"))
			var b *campaignd.Broadcast
			for i := 1; ; i++ {
				if i > DefaultMaxAttempts+2 {
					t.Fatal("the job does not end")
				}
				// Each attempt from the store's copy, as after a restart,
				// with a new Ingester.
				jobs, err := db.Jobs()
				if err != nil {
					t.Fatal(err)
				}
				if len(jobs) == 0 {
					break
				}
				if jobs[0].Attempts != i-1 {
					t.Fatalf("attempt %d: the store says %d attempts", i, jobs[0].Attempts)
				}
				in := newIngester(t, flaky, root, o)
				var retryAt time.Time
				b, retryAt, err = in.Attempt(context.Background(), jobs[0])
				if retryAt.IsZero() {
					break
				}
				if err == nil {
					t.Fatal("a retry without an error")
				}
				want := clock.Now().Add(DefaultRetryBase << (i - 1))
				if !retryAt.Equal(want) {
					t.Fatalf("attempt %d: retry at %v, want %v", i, retryAt, want)
				}
				// Not due yet: not run.
				clock.Set(retryAt.Add(-time.Millisecond))
				jobs, _ = db.Jobs()
				if _, again, _ := in.Attempt(context.Background(), jobs[0]); !again.Equal(retryAt) {
					t.Fatalf("a job not due ran (next %v)", again)
				}
				clock.Set(retryAt)
			}
			u, _ := db.Upload(1)
			if tc.ok {
				if b == nil || u.Outcome != campaignd.UploadAccepted || ev.retries != tc.fails {
					t.Fatalf("broadcast %v, upload %+v, %d retries", b, u, ev.retries)
				}
				return
			}
			if b != nil || u.Outcome != campaignd.UploadRejected || len(u.Errors) != 1 ||
				!strings.Contains(u.Errors[0].Error, "ingest failed 8 times") || !strings.Contains(u.Errors[0].Error, "disk I/O error") {
				t.Fatalf("broadcast %v, upload %+v", b, u)
			}
			if u.ResultPath != "rejected/x.csv" || !strings.Contains(readFile(t, filepath.Join(root, "rejected", "x.csv.errors.csv")), "ingest failed") {
				t.Errorf("result path %q", u.ResultPath)
			}
			if len(ev.done) != 1 || ev.done[0] != IngestFailed || ev.retries != DefaultMaxAttempts-1 {
				t.Errorf("events %+v", ev)
			}
		})
	}
}

// TestAttemptCountsCrashes: an attempt is counted before the run, so a run
// that kills the process (say out of memory) still counts: after
// MaxAttempts such starts the job ends without running again.
func TestAttemptCountsCrashes(t *testing.T) {
	db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
	job := upload(t, db, root, "x.csv", fixture(t, "pending-example.csv"))
	job.Attempts, job.LastError = DefaultMaxAttempts, ""
	if err := db.SaveJob(job); err != nil {
		t.Fatal(err)
	}
	jobs, _ := db.Jobs()
	b, retryAt, err := newIngester(t, db, root, testOptions()).Attempt(context.Background(), jobs[0])
	if b != nil || !retryAt.IsZero() || err != nil {
		t.Fatalf("Attempt = %v, %v, %v", b, retryAt, err)
	}
	u, _ := db.Upload(job.Upload.ID)
	if u.Outcome != campaignd.UploadRejected || !strings.Contains(u.Errors[0].Error, "failed 8 times") {
		t.Fatalf("upload %+v", u)
	}
	if jobs, _ := db.Jobs(); len(jobs) != 0 {
		t.Fatalf("%d jobs left", len(jobs))
	}
	if countBroadcasts(t, db) != 0 {
		t.Fatal("a broadcast was made")
	}
}

// TestAttemptLasting: failures that cannot pass end the job at the first
// attempt, rejected with the reason, in rejected/ when possible.
func TestAttemptLasting(t *testing.T) {
	content := fixture(t, "pending-example.csv")
	t.Run("a file named processed is in the way", func(t *testing.T) {
		db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
		os.WriteFile(filepath.Join(root, "processed"), []byte("not a folder"), 0o644)
		job := upload(t, db, root, "x.csv", content)
		b, retryAt, _ := newIngester(t, db, root, testOptions()).Attempt(context.Background(), job)
		u, _ := db.Upload(job.Upload.ID)
		if b != nil || !retryAt.IsZero() || u.Outcome != campaignd.UploadRejected || !strings.Contains(u.Errors[0].Error, "in the way") {
			t.Fatalf("broadcast %v, retry %v, upload %+v", b, retryAt, u)
		}
		if u.ResultPath != "rejected/x.csv" || readFile(t, filepath.Join(root, "rejected", "x.csv")) != string(content) {
			t.Errorf("result path %q", u.ResultPath)
		}
		if countBroadcasts(t, db) != 0 {
			t.Error("a broadcast was stored")
		}
	})
	t.Run("the upload itself is named processed", func(t *testing.T) {
		db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
		job := upload(t, db, root, "processed", content)
		b, retryAt, _ := newIngester(t, db, root, testOptions()).Attempt(context.Background(), job)
		u, _ := db.Upload(job.Upload.ID)
		if b != nil || !retryAt.IsZero() || u.Outcome != campaignd.UploadRejected || u.ResultPath != "rejected/processed" {
			t.Fatalf("broadcast %v, retry %v, upload %+v", b, retryAt, u)
		}
	})
	t.Run("both result folders blocked", func(t *testing.T) {
		db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
		os.WriteFile(filepath.Join(root, "processed"), nil, 0o644)
		os.WriteFile(filepath.Join(root, "rejected"), nil, 0o644)
		job := upload(t, db, root, "x.csv", content)
		b, retryAt, _ := newIngester(t, db, root, testOptions()).Attempt(context.Background(), job)
		u, _ := db.Upload(job.Upload.ID)
		if b != nil || !retryAt.IsZero() || u.Outcome != campaignd.UploadRejected || u.ResultPath != "" || !strings.Contains(u.Errors[0].Error, "in the way") {
			t.Fatalf("broadcast %v, retry %v, upload %+v", b, retryAt, u)
		}
		if readFile(t, waitingPath(root, job)) != string(content) {
			t.Error("the file is not left where it was")
		}
		if jobs, _ := db.Jobs(); len(jobs) != 0 {
			t.Errorf("%d jobs left", len(jobs))
		}
	})
	t.Run("a record the store refuses for its size", func(t *testing.T) {
		db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
		flaky := &flakyDB{DB: db, fail: 1, err: fmt.Errorf("store: save: %w", store.ErrTooBig)}
		job := upload(t, db, root, "x.csv", content)
		b, retryAt, _ := newIngester(t, flaky, root, testOptions()).Attempt(context.Background(), job)
		u, _ := db.Upload(job.Upload.ID)
		if b != nil || !retryAt.IsZero() || u.Outcome != campaignd.UploadRejected || !strings.Contains(u.Errors[0].Error, "too large") || u.ResultPath != "rejected/x.csv" {
			t.Fatalf("broadcast %v, retry %v, upload %+v", b, retryAt, u)
		}
	})
	t.Run("file gone", func(t *testing.T) {
		db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
		job := upload(t, db, root, "x.csv", content)
		os.Remove(waitingPath(root, job))
		if _, retryAt, _ := newIngester(t, db, root, testOptions()).Attempt(context.Background(), job); !retryAt.IsZero() {
			t.Fatal("retried")
		}
		if u, _ := db.Upload(job.Upload.ID); u.Outcome != campaignd.UploadRejected {
			t.Fatalf("upload %+v", u)
		}
	})
}

// TestLongNames: names of 200 to 255 bytes, ASCII or multi-byte, free or
// taken in processed/, are accepted and their result names (with suffix
// and errors file) fit a file name.
func TestLongNames(t *testing.T) {
	content := fixture(t, "duplicates.csv") // accepted with an errors file
	// The errors file's temporary name ("." + name + ".errors.csv.tmp")
	// must fit the 255 bytes of a file name.
	const maxResultName = 255 - len("..errors.csv.tmp")
	for _, n := range []int{200, 235, 239, 240, 245, 250, 251, 255} {
		for _, unit := range []string{"a", "ñ", "€"} {
			stem := strings.Repeat(unit, (n-4)/len(unit))
			stem += strings.Repeat("x", n-4-len(stem))
			name := stem + ".csv"
			fitted := "" // the name a first upload gets, taken for the second
			for _, taken := range []bool{false, true} {
				db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
				if taken {
					os.MkdirAll(filepath.Join(root, "processed"), 0o755)
					os.WriteFile(filepath.Join(root, "processed", fitted), []byte("earlier"), 0o644)
				}
				job := upload(t, db, root, name, content)
				b, retryAt, err := newIngester(t, db, root, testOptions()).Attempt(context.Background(), job)
				if b == nil || !retryAt.IsZero() || err != nil {
					t.Fatalf("%d bytes of %q, taken %v: %v, %v, %v", n, unit, taken, b, retryAt, err)
				}
				u, _ := db.Upload(job.Upload.ID)
				base := strings.TrimPrefix(u.ResultPath, "processed/")
				if len(base) > maxResultName || !utf8.ValidString(base) || !strings.HasSuffix(base, ".csv") ||
					!strings.HasPrefix(name, base[:min(len(base), 100)]) && !taken || taken && base == fitted {
					t.Fatalf("result %q (%d bytes), taken %v", base, len(base), taken)
				}
				if readFile(t, filepath.Join(root, "processed", base)) != string(content) {
					t.Fatal("file not moved")
				}
				readFile(t, filepath.Join(root, "processed", base+".errors.csv"))
				fitted = base
			}
		}
	}
}

// rejectFailDB is a store that cannot record a rejection while fail > 0.
type rejectFailDB struct {
	*store.DB
	fail int
}

func (f *rejectFailDB) RejectUpload(u *campaignd.Upload) error {
	if f.fail > 0 {
		f.fail--
		return errors.New("disk I/O error")
	}
	return f.DB.RejectUpload(u)
}

// TestAttemptRejectionNotRecorded: when the rejection of a job that cannot
// finish cannot itself be recorded, the job is not dropped: Attempt gives a
// time to try again, and a later attempt records the rejection. An
// acknowledged upload never ends in silence.
func TestAttemptRejectionNotRecorded(t *testing.T) {
	db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
	os.WriteFile(filepath.Join(root, "processed"), []byte("not a folder"), 0o644)
	os.WriteFile(filepath.Join(root, "rejected"), []byte("not a folder"), 0o644)
	job := upload(t, db, root, "x.csv", fixture(t, "pending-example.csv"))
	clock := &testClock{t: testNow}
	o := testOptions()
	o.Now = clock.Now
	in := newIngester(t, &rejectFailDB{DB: db, fail: 1}, root, o)
	_, retryAt, err := in.Attempt(context.Background(), job)
	if retryAt.IsZero() || err == nil {
		t.Fatalf("retry %v, err %v: the job ended though its rejection was not recorded", retryAt, err)
	}
	if jobs, _ := db.Jobs(); len(jobs) != 1 {
		t.Fatalf("%d jobs left, want the job kept", len(jobs))
	}
	clock.Set(retryAt)
	jobs, _ := db.Jobs()
	if _, retryAt, _ = in.Attempt(context.Background(), jobs[0]); !retryAt.IsZero() {
		t.Fatalf("second attempt: retry %v, want the job ended", retryAt)
	}
	if u, _ := db.Upload(job.Upload.ID); u.Outcome != campaignd.UploadRejected {
		t.Fatalf("outcome %q, want rejected", u.Outcome)
	}
	if jobs, _ := db.Jobs(); len(jobs) != 0 {
		t.Fatalf("%d jobs left after the rejection was recorded", len(jobs))
	}
}
