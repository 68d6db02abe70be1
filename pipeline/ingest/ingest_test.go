package ingest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"campaignd"
	"campaignd/ftpd"
	"campaignd/internal/testenv"
	"campaignd/store"
)

// recordedEvents is an Events that remembers what it was told.
type recordedEvents struct {
	mu      sync.Mutex
	rows    map[string]int
	done    []string
	retries int
}

func (e *recordedEvents) IngestRetry() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.retries++
}

func (e *recordedEvents) RowsIngested(result string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.rows == nil {
		e.rows = make(map[string]int)
	}
	e.rows[result] += n
}

func (e *recordedEvents) IngestDone(result string, d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.done = append(e.done, result)
}

// upload puts content in the jail root as name and records its job, as
// ftpd does when a STOR completes.
func upload(tb testing.TB, db *store.DB, root, name string, content []byte) *campaignd.Job {
	tb.Helper()
	p := filepath.Join(root, name)
	if err := os.WriteFile(p, content, 0o644); err != nil {
		tb.Fatal(err)
	}
	job, err := db.CreateUpload(&campaignd.Upload{
		User: "syniverse", Path: "/" + name, FileName: name,
		Size: int64(len(content)), ReceivedAt: testNow,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return job
}

// jailDir makes the jail of user syniverse, who makes every upload here,
// in a new FTP root.
func jailDir(tb testing.TB) string {
	tb.Helper()
	root := filepath.Join(tb.TempDir(), "syniverse")
	if err := os.Mkdir(root, 0o750); err != nil {
		tb.Fatal(err)
	}
	return root
}

// newIngester is an Ingester over db reading uploads from the jail root
// (made by jailDir) through ftpd's Inbox, as campaignd runs it.
func newIngester(tb testing.TB, db Store, root string, o Options) *Ingester {
	tb.Helper()
	inbox := ftpd.NewInbox(ftpd.InboxOptions{Root: filepath.Dir(root), Location: o.Location})
	tb.Cleanup(func() { inbox.Close() })
	o.Inbox = inbox
	return NewIngester(db, o)
}

// waitingPath is where the file of job waits on disk (upload puts it there).
func waitingPath(root string, job *campaignd.Job) string {
	return filepath.Join(root, filepath.FromSlash(job.Upload.Path))
}

func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func readFile(tb testing.TB, p string) string {
	tb.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func mustNotExist(tb testing.TB, p string) {
	tb.Helper()
	if _, err := os.Lstat(p); err == nil {
		tb.Errorf("%s exists", p)
	}
}

func countBroadcasts(tb testing.TB, db *store.DB) int {
	tb.Helper()
	_, n, err := db.Broadcasts(campaignd.BroadcastFilter{})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func TestRunAccepted(t *testing.T) {
	db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
	ev := &recordedEvents{}
	o := testOptions()
	o.Events = ev
	in := newIngester(t, db, root, o)
	content := fixture(t, "scheduled-example.csv")
	job := upload(t, db, root, "scheduled-example.csv", content)

	b, err := in.Run(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	if b == nil {
		t.Fatal("rejected")
	}
	if b.ID != job.BroadcastID || b.Status != campaignd.StatusScheduled || b.Name != "Puntos Noviembre" ||
		b.Sender != "28776" || b.FileName != "scheduled-example.csv" || b.Charset != "UTF-8" ||
		!b.ScheduledAt.Equal(at(2026, 11, 28, 10, 0, 0)) || !b.CreatedAt.Equal(testNow) ||
		b.Counts.Total != 2 || b.Counts.Queued != 2 || b.Segments != 2 {
		t.Errorf("broadcast %+v", b)
	}
	stored, err := db.Broadcast(b.ID)
	if err != nil || stored.Name != b.Name {
		t.Fatalf("stored broadcast %+v, %v", stored, err)
	}
	var rows []campaignd.Row
	db.Rows(b.ID, 0, func(_ uint32, r *campaignd.Row) error { rows = append(rows, *r); return nil })
	if len(rows) != 2 || rows[1].Recipient != "525587654321" || rows[1].RecipientRaw != "+52 55 8765 4321" || rows[1].MemberID != "6007654321" || rows[1].Line != 3 {
		t.Errorf("rows %+v", rows)
	}
	if got := readFile(t, filepath.Join(root, "processed", "scheduled-example.csv")); got != string(content) {
		t.Error("processed file differs from the upload")
	}
	mustNotExist(t, filepath.Join(root, "scheduled-example.csv"))
	mustNotExist(t, filepath.Join(root, "processed", "scheduled-example.csv.errors.csv"))
	u, err := db.Upload(job.Upload.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.Outcome != campaignd.UploadAccepted || u.BroadcastID != b.ID || u.ResultPath != "processed/scheduled-example.csv" ||
		u.ErrorCount != 0 || len(u.SHA256) != 64 {
		t.Errorf("upload %+v", u)
	}
	if jobs, _ := db.Jobs(); len(jobs) != 0 {
		t.Errorf("%d jobs left", len(jobs))
	}
	if ev.rows[ResultValid] != 2 || len(ev.done) != 1 || ev.done[0] != "accepted" {
		t.Errorf("events %+v", ev)
	}
}

func TestRunAcceptedWithSkippedRows(t *testing.T) {
	db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
	ev := &recordedEvents{}
	o := testOptions()
	o.Events = ev
	job := upload(t, db, root, "duplicates.csv", fixture(t, "duplicates.csv"))
	b, err := newIngester(t, db, root, o).Run(context.Background(), job)
	if err != nil || b == nil {
		t.Fatalf("Run = %v, %v", b, err)
	}
	if b.Counts.Total != 2 || b.Counts.Duplicate != 3 || b.Status != campaignd.StatusPending || b.Name != "duplicates" {
		t.Errorf("broadcast %+v", b)
	}
	want := "line,column,value,error\r\n" +
		"3,telefono,+52 55 1111 2222,duplicate of line 2: each number is sent once\r\n" +
		"5,telefono,044 55 1111 2222,duplicate of line 2: each number is sent once\r\n" +
		"6,telefono,5511113333,duplicate of line 4: each number is sent once\r\n"
	if got := readFile(t, filepath.Join(root, "processed", "duplicates.csv.errors.csv")); got != want {
		t.Errorf("errors.csv =\n%s\nwant\n%s", got, want)
	}
	u, _ := db.Upload(job.Upload.ID)
	if u.ErrorCount != 3 || len(u.Errors) != 3 || u.Errors[0].Line != 3 || u.Errors[0].Error != campaignd.RowDuplicate || u.Errors[0].FirstLine != 2 || u.Errors[2].FirstLine != 4 {
		t.Errorf("upload errors %d %+v", u.ErrorCount, u.Errors)
	}
	if ev.rows[ResultDuplicate] != 3 || ev.rows[ResultValid] != 2 {
		t.Errorf("events %+v", ev.rows)
	}
}

func TestRunRejected(t *testing.T) {
	db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
	ev := &recordedEvents{}
	o := testOptions()
	o.Events = ev
	content := fixture(t, "too-many-invalid.csv")
	job := upload(t, db, root, "too-many-invalid.csv", content)
	b, err := newIngester(t, db, root, o).Run(context.Background(), job)
	if err != nil || b != nil {
		t.Fatalf("Run = %v, %v; want nil, nil", b, err)
	}
	if got := readFile(t, filepath.Join(root, "rejected", "too-many-invalid.csv")); got != string(content) {
		t.Error("rejected file differs from the upload")
	}
	mustNotExist(t, filepath.Join(root, "too-many-invalid.csv"))
	want := "line,column,value,error\r\n" +
		"0,,,\"2 of 10 rows are invalid (20.0%), more than the 10% allowed\"\r\n" +
		"10,phone,bad,\"invalid recipient: it contains “b”: write only digits (spaces, dashes, dots and parentheses may separate them)\"\r\n" +
		"11,phone,bad2,\"invalid recipient: it contains “b”: write only digits (spaces, dashes, dots and parentheses may separate them)\"\r\n"
	if got := readFile(t, filepath.Join(root, "rejected", "too-many-invalid.csv.errors.csv")); got != want {
		t.Errorf("errors.csv =\n%s\nwant\n%s", got, want)
	}
	u, _ := db.Upload(job.Upload.ID)
	if u.Outcome != campaignd.UploadRejected || u.ResultPath != "rejected/too-many-invalid.csv" || len(u.Errors) != 3 || u.ErrorCount != 2 {
		t.Errorf("upload %+v", u)
	}
	if _, err := db.Broadcast(job.BroadcastID); campaignd.ErrorCode(err) != campaignd.ENOTFOUND {
		t.Errorf("broadcast of a rejected file: %v", err)
	}
	if jobs, _ := db.Jobs(); len(jobs) != 0 {
		t.Errorf("%d jobs left", len(jobs))
	}
	if len(ev.done) != 1 || ev.done[0] != "rejected" {
		t.Errorf("events %+v", ev.done)
	}
	if countBroadcasts(t, db) != 0 {
		t.Error("a broadcast was stored")
	}
}

// TestRunRejectedFiles runs file-level rejects through the whole path.
func TestRunRejectedFiles(t *testing.T) {
	for _, tc := range []struct{ file, line, contains string }{
		{"empty.csv", "0", "empty file"},
		{"binary.csv", "2", "not a text file"},
		{"header-only.csv", "0", "no valid row"},
		{"broken-quote.csv", "3", "broken CSV quoting"},
		{"date-mixed.csv", "3", "differs between rows"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
			job := upload(t, db, root, tc.file, fixture(t, tc.file))
			b, err := newIngester(t, db, root, testOptions()).Run(context.Background(), job)
			if err != nil || b != nil {
				t.Fatalf("Run = %v, %v", b, err)
			}
			got := readFile(t, filepath.Join(root, "rejected", tc.file+".errors.csv"))
			lines := strings.Split(got, "\r\n")
			if len(lines) < 2 || !strings.HasPrefix(lines[1], tc.line+",") || !strings.Contains(lines[1], tc.contains) {
				t.Errorf("errors.csv = %q", got)
			}
		})
	}
}

func TestRunDuplicateFile(t *testing.T) {
	db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
	in := newIngester(t, db, root, testOptions())
	content := fixture(t, "pending-example.csv")
	first, err := in.Run(context.Background(), upload(t, db, root, "a.csv", content))
	if err != nil || first == nil {
		t.Fatalf("first Run = %v, %v", first, err)
	}
	job := upload(t, db, root, "b.csv", content)
	b, err := in.Run(context.Background(), job)
	if err != nil || b != nil {
		t.Fatalf("second Run = %v, %v; want rejected", b, err)
	}
	u, _ := db.Upload(job.Upload.ID)
	if u.Outcome != campaignd.UploadRejected || len(u.Errors) != 1 ||
		!strings.Contains(u.Errors[0].Error, "already accepted as broadcast "+itoa(first.ID)) {
		t.Errorf("upload %+v", u)
	}
	if !strings.Contains(readFile(t, filepath.Join(root, "rejected", "b.csv.errors.csv")), "broadcast "+itoa(first.ID)) {
		t.Error("errors.csv does not name the broadcast")
	}

	// Outside the window, the same file is accepted again.
	o := testOptions()
	o.Now = func() time.Time { return testNow.Add(DefaultDuplicateWindow + time.Hour) }
	b, err = newIngester(t, db, root, o).Run(context.Background(), upload(t, db, root, "c.csv", content))
	if err != nil || b == nil {
		t.Fatalf("Run after the window = %v, %v", b, err)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func TestRunRerun(t *testing.T) {
	content := fixture(t, "duplicates.csv")
	t.Run("finished job returns its broadcast", func(t *testing.T) {
		db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
		in := newIngester(t, db, root, testOptions())
		job := upload(t, db, root, "x.csv", content)
		b1, err := in.Run(context.Background(), job)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := in.Run(context.Background(), job)
		if err != nil || b2 == nil || b2.ID != b1.ID {
			t.Fatalf("rerun = %+v, %v", b2, err)
		}
		if n := countBroadcasts(t, db); n != 1 {
			t.Errorf("%d broadcasts", n)
		}
	})
	t.Run("crash after the move, before the commit, then restart", func(t *testing.T) {
		db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
		job := upload(t, db, root, "x.csv", content)
		// What a run that died after moving the file leaves behind.
		u, _ := db.Upload(job.Upload.ID)
		u.ResultPath = "processed/x.csv"
		db.SaveUpload(u)
		os.MkdirAll(filepath.Join(root, "processed"), 0o755)
		if err := os.Rename(waitingPath(root, job), filepath.Join(root, "processed", "x.csv")); err != nil {
			t.Fatal(err)
		}
		// At start-up the job comes back from the store, without paths.
		jobs, _ := db.Jobs()
		if len(jobs) != 1 {
			t.Fatalf("%d jobs", len(jobs))
		}
		o := testOptions()
		b, err := newIngester(t, db, root, o).Run(context.Background(), jobs[0])
		if err != nil || b == nil || b.ID != job.BroadcastID || b.Counts.Total != 2 {
			t.Fatalf("rerun = %+v, %v", b, err)
		}
		if n := countBroadcasts(t, db); n != 1 {
			t.Errorf("%d broadcasts", n)
		}
		if readFile(t, filepath.Join(root, "processed", "x.csv")) != string(content) {
			t.Error("processed file changed")
		}
		mustNotExist(t, filepath.Join(root, "processed", "x_20261122-120000.csv"))
		if !strings.Contains(readFile(t, filepath.Join(root, "processed", "x.csv.errors.csv")), "duplicate") {
			t.Error("no errors file")
		}
	})
	t.Run("restart before the move", func(t *testing.T) {
		db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
		upload(t, db, root, "x.csv", content)
		jobs, _ := db.Jobs()
		o := testOptions()
		b, err := newIngester(t, db, root, o).Run(context.Background(), jobs[0])
		if err != nil || b == nil {
			t.Fatalf("run = %+v, %v", b, err)
		}
		mustNotExist(t, filepath.Join(root, "x.csv"))
		readFile(t, filepath.Join(root, "processed", "x.csv"))
	})
	t.Run("crash between link and unlink", func(t *testing.T) {
		db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
		job := upload(t, db, root, "x.csv", content)
		u, _ := db.Upload(job.Upload.ID)
		u.ResultPath = "processed/x.csv"
		db.SaveUpload(u)
		os.MkdirAll(filepath.Join(root, "processed"), 0o755)
		if err := os.Link(waitingPath(root, job), filepath.Join(root, "processed", "x.csv")); err != nil {
			t.Fatal(err)
		}
		b, err := newIngester(t, db, root, testOptions()).Run(context.Background(), job)
		if err != nil || b == nil {
			t.Fatalf("rerun = %+v, %v", b, err)
		}
		mustNotExist(t, waitingPath(root, job))
		readFile(t, filepath.Join(root, "processed", "x.csv"))
	})
	t.Run("crash mid-ingest leaves rows", func(t *testing.T) {
		db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
		job := upload(t, db, root, "x.csv", content)
		// A first attempt that wrote rows and died.
		w, err := db.NewBroadcastWriter(job)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 300; i++ {
			w.Add(&campaignd.Row{Line: i, Recipient: "525500000000", Text: "stale", Encoding: "GSM-7", Segments: 1})
		}
		b, err := newIngester(t, db, root, testOptions()).Run(context.Background(), job)
		if err != nil || b == nil {
			t.Fatalf("rerun = %+v, %v", b, err)
		}
		n := 0
		db.Rows(b.ID, 0, func(_ uint32, r *campaignd.Row) error {
			n++
			if r.Text == "stale" {
				t.Error("stale row survived")
			}
			return nil
		})
		if n != 2 || countBroadcasts(t, db) != 1 {
			t.Errorf("%d rows, %d broadcasts", n, countBroadcasts(t, db))
		}
	})
}

func TestRunTakenName(t *testing.T) {
	db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
	os.MkdirAll(filepath.Join(root, "processed"), 0o755)
	old := filepath.Join(root, "processed", "x.csv")
	os.WriteFile(old, []byte("earlier file"), 0o644)
	job := upload(t, db, root, "x.csv", fixture(t, "pending-example.csv"))
	if b, err := newIngester(t, db, root, testOptions()).Run(context.Background(), job); err != nil || b == nil {
		t.Fatalf("Run = %v, %v", b, err)
	}
	if readFile(t, old) != "earlier file" {
		t.Error("existing file overwritten")
	}
	moved := filepath.Join(root, "processed", "x_20261122-120000.csv")
	if readFile(t, moved) != string(fixture(t, "pending-example.csv")) {
		t.Error("file not moved to the suffixed name")
	}
	u, _ := db.Upload(job.Upload.ID)
	if u.ResultPath != "processed/x_20261122-120000.csv" {
		t.Errorf("result path %q", u.ResultPath)
	}
}

func TestRunFileGone(t *testing.T) {
	db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
	job := upload(t, db, root, "x.csv", fixture(t, "pending-example.csv"))
	os.Remove(waitingPath(root, job))
	b, err := newIngester(t, db, root, testOptions()).Run(context.Background(), job)
	if err != nil || b != nil {
		t.Fatalf("Run = %v, %v", b, err)
	}
	u, _ := db.Upload(job.Upload.ID)
	if u.Outcome != campaignd.UploadRejected || len(u.Errors) != 1 {
		t.Errorf("upload %+v", u)
	}
	if jobs, _ := db.Jobs(); len(jobs) != 0 {
		t.Errorf("%d jobs left", len(jobs))
	}
}

func TestRunCancelled(t *testing.T) {
	db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
	var sb strings.Builder
	sb.WriteString("phone,message\n")
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&sb, "55%08d,Hola\n", i)
	}
	job := upload(t, db, root, "x.csv", []byte(sb.String()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := newIngester(t, db, root, testOptions()).Run(ctx, job); err == nil {
		t.Fatal("Run with a cancelled context succeeded")
	}
	if jobs, _ := db.Jobs(); len(jobs) != 1 {
		t.Fatalf("job not kept: %d jobs", len(jobs))
	}
	if _, err := os.Stat(waitingPath(root, job)); err != nil {
		t.Error("file moved by a cancelled run")
	}
	b, err := newIngester(t, db, root, testOptions()).Run(context.Background(), job)
	if err != nil || b == nil || b.Counts.Total != 10000 {
		t.Fatalf("rerun = %+v, %v", b, err)
	}
}
