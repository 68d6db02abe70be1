package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"campaignd"
	"campaignd/internal/testenv"
	"campaignd/store"
)

func mustSuppress(tb testing.TB, db *store.DB, numbers ...string) {
	tb.Helper()
	for _, n := range numbers {
		if _, err := db.Suppress(campaignd.Suppression{Number: n, Reason: campaignd.SuppressOperator}); err != nil {
			tb.Fatal(err)
		}
	}
}

// A listed number is a skipped row "opted out", whatever form it is
// written in, counted apart from invalid rows and never toward
// max_invalid_percent.
func TestIngestSkipsOptedOut(t *testing.T) {
	db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
	mustSuppress(t, db, "525512345678", "525500000002")
	ev := &recordedEvents{}
	o := testOptions()
	o.Events = ev
	o.MaxInvalidPercent = -1 // no invalid row allowed: opted-out rows must not count
	in := newIngester(t, db, root, o)
	content := "Telefono,Mensaje\n" +
		"5512345678,hola\n" + // line 2: listed, national form
		"5500000001,hola\n" +
		"+52 (55) 0000-0002,hola\n" + // line 4: listed, +52 form
		"0445500000002,hola\n" + // line 5: the same number again: a duplicate
		"5215512345678,hola\n" + // line 6: listed, old mobile form… and a duplicate of line 2
		"5500000003,hola\n"
	job := upload(t, db, root, "optout.csv", []byte(content))
	b, err := in.Run(context.Background(), job)
	if err != nil || b == nil {
		t.Fatalf("Run = %v, %v", b, err)
	}
	if b.Counts.OptedOut != 2 || b.Counts.Duplicate != 2 || b.Counts.Invalid != 0 || b.Counts.Total != 2 {
		t.Fatalf("counts %+v: want 2 opted out, 2 duplicates, 2 messages", b.Counts)
	}
	errs := readFile(t, filepath.Join(root, "processed", "optout.csv.errors.csv"))
	for _, want := range []string{"2,Telefono,5512345678,opted out", "4,Telefono,+52 (55) 0000-0002,opted out", "5,Telefono,0445500000002,duplicate"} {
		if !strings.Contains(errs, want) {
			t.Errorf("errors file lacks %q:\n%s", want, errs)
		}
	}
	if ev.rows[ResultOptedOut] != 2 || ev.rows[ResultInvalid] != 0 {
		t.Errorf("events %+v", ev.rows)
	}
	// Every row opted out: no valid row, the file is rejected.
	job = upload(t, db, root, "all.csv", []byte("Telefono,Mensaje\n5512345678,hola\n"))
	if b, err := in.Run(context.Background(), job); err != nil || b != nil {
		t.Fatalf("all opted out: %v, %v", b, err)
	}
}

func runImport(tb testing.TB, db *store.DB, root, name, content, via string) (*campaignd.Upload, error) {
	tb.Helper()
	dir := filepath.Join(root, campaignd.SuppressionsDir)
	os.MkdirAll(dir, 0o755)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
	job, err := db.CreateUpload(&campaignd.Upload{User: "syniverse", Path: campaignd.SuppressionsDir + "/" + name, FileName: name, Size: int64(len(content)), Via: via, ReceivedAt: testNow})
	if err != nil {
		tb.Fatal(err)
	}
	in := newIngester(tb, db, root, testOptions())
	b, err := in.Run(context.Background(), job)
	if b != nil {
		tb.Fatalf("an import made broadcast %d", b.ID)
	}
	if err != nil {
		return nil, err
	}
	return db.Upload(job.Upload.ID)
}

func TestSuppressionImportForms(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		want          []string
		invalid       int
	}{
		{"one a line, no header", "5512345678\n5500000001\r\n\n", []string{"525512345678", "525500000001"}, 0},
		{"header", "telefono\n5512345678\n", []string{"525512345678"}, 0},
		{"named column", "nombre,celular\nAna,5512345678\nLuis,+1 415 555 0100\n", []string{"525512345678", "14155550100"}, 0},
		{"semicolons", "id;numero\n1;0445512345678\n2;521 55 0000 0001\n", []string{"525512345678", "525500000001"}, 0},
		{"bad lines", "5512345678\n123\nabc\n5512345678\n", []string{"525512345678"}, 2},
		{"bom and quotes", "\uFEFF\"msisdn\"\n\"55 1234 5678\"\n", []string{"525512345678"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
			u, err := runImport(t, db, root, "list.csv", tc.content, campaignd.ViaSTOR)
			if err != nil {
				t.Fatal(err)
			}
			if u.Outcome != campaignd.UploadAccepted || u.Imported != len(tc.want) || u.ErrorCount != tc.invalid || u.ResultPath != "processed/list.csv" {
				t.Fatalf("upload %+v", u)
			}
			if n, _ := db.SuppressionCount(); n != len(tc.want) {
				t.Fatalf("list holds %d", n)
			}
			for _, w := range tc.want {
				s, _ := db.Suppressed(w)
				if s == nil || s.Reason != campaignd.SuppressImport || s.Source != "suppressions/list.csv" || s.By != "ftp:syniverse" {
					t.Errorf("%s: %+v", w, s)
				}
			}
			errFile := filepath.Join(root, "processed", "list.csv.errors.csv")
			if tc.invalid > 0 {
				if got := strings.Count(readFile(t, errFile), campaignd.RowInvalidRecipient); got != tc.invalid {
					t.Errorf("errors file lists %d", got)
				}
			} else {
				mustNotExist(t, errFile)
			}
			mustNotExist(t, filepath.Join(root, campaignd.SuppressionsDir, "list.csv"))
			log, _ := db.AuditLog(0)
			if len(log) != 1 || log[0].Action != "import" || log[0].User != "ftp:syniverse" {
				t.Errorf("audit %+v", log)
			}
		})
	}
}

func TestSuppressionImportRejected(t *testing.T) {
	for _, tc := range []struct{ name, content, via, want string }{
		{"empty", "", campaignd.ViaSTOR, "empty file"},
		{"no valid number", "numero\nabc\n12\n", campaignd.ViaSTOR, "no valid number"},
		{"header only", "telefono\n", campaignd.ViaSTOR, "no numbers"},
		{"cut last line", "5512345678\n55123", campaignd.ViaSTOR, "truncated upload"},
		{"binary", "55\x0012345678\n", campaignd.ViaSTOR, "NUL"},
		// The caps of an upload hold for a list too, found while reading:
		// a list is never held whole in memory, however long its lines.
		{"field over 64 KB", "5512345678" + strings.Repeat("9", 70<<10) + "\n5500000001\n", campaignd.ViaSTOR, "longer than 65536 bytes"},
		{"field over 64 KB, last line", strings.Repeat("x", 70<<10) + "\n", campaignd.ViaSTOR, "longer than 65536 bytes"},
		{"quote left open", "\"" + strings.Repeat("5512345678\n", 7000), campaignd.ViaSTOR, "longer than 65536 bytes"},
		{"record over 1 MB", strings.Repeat("x,", 600<<10) + "\n", campaignd.ViaSTOR, "longer than 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
			u, err := runImport(t, db, root, "list.csv", tc.content, tc.via)
			if err != nil {
				t.Fatal(err)
			}
			if u.Outcome != campaignd.UploadRejected || u.ResultPath != "rejected/list.csv" || len(u.Errors) == 0 || !strings.Contains(u.Errors[0].Error, tc.want) {
				t.Fatalf("upload %+v", u)
			}
			if !strings.Contains(readFile(t, filepath.Join(root, "rejected", "list.csv.errors.csv")), tc.want) {
				t.Error("errors file lacks the reason")
			}
			if n, _ := db.SuppressionCount(); n != 0 {
				t.Errorf("list holds %d", n)
			}
		})
	}
	// A last line without a line end is fine when a rename or a marker
	// said the file is complete.
	db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
	if u, err := runImport(t, db, root, "list.csv", "5512345678\n5500000001", campaignd.ViaRename); err != nil || u.Imported != 2 {
		t.Fatalf("renamed: %+v, %v", u, err)
	}
}

// A bad line's value is cut in the errors file as in an upload's, so a
// list of long lines does not come back many times its size.
func TestSuppressionImportErrorsBounded(t *testing.T) {
	db, root := testenv.OpenStore(t), jailDir(t)
	long := "abc" + strings.Repeat("x", 60<<10)
	content := "5512345678\n" + strings.Repeat(long+"\n", 20)
	u, err := runImport(t, db, root, "list.csv", content, campaignd.ViaSTOR)
	if err != nil {
		t.Fatal(err)
	}
	if u.Outcome != campaignd.UploadAccepted || u.Imported != 1 || u.ErrorCount != 20 {
		t.Fatalf("upload %+v", u)
	}
	errs := readFile(t, filepath.Join(root, "processed", "list.csv.errors.csv"))
	if len(errs) > 20*500 { // a cut value and a reason of under 200 bytes a line
		t.Fatalf("errors file is %d bytes for 20 bad lines", len(errs))
	}
	for _, e := range u.Errors {
		if len(e.Value) > 210 {
			t.Fatalf("stored error value of %d bytes", len(e.Value))
		}
	}
}

// The numbers a list remembers to count duplicates are bounded (a list
// of max_upload_bytes holds 90 million numbers): past the bound, duplicates
// still go on the list once.
func TestSuppressionImportSeenBounded(t *testing.T) {
	defer func(n int) { maxListSeen = n }(maxListSeen)
	maxListSeen = 10
	var sb strings.Builder
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&sb, "55%08d\n55%08d\n", i, i) // each number twice
	}
	db := testenv.OpenStore(t)
	lr := newListReader(strings.NewReader(sb.String()), newRecipientRules(nil), 0, 0, 0, func(n string) campaignd.Suppression {
		return campaignd.Suppression{Number: n, Reason: campaignd.SuppressImport}
	})
	res, err := lr.run(context.Background(), db, &validation{}, func(campaignd.FileError) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(lr.seen) > 10 {
		t.Fatalf("the list remembered %d numbers, the bound is 10", len(lr.seen))
	}
	if res.Added != 30 || res.Lines != 60 || res.Valid < 30 {
		t.Fatalf("result %+v: want 30 added of 60 lines", res)
	}
	if n, _ := db.SuppressionCount(); n != 30 {
		t.Fatalf("list holds %d, want 30", n)
	}
}

// failingStore fails SuppressMany after some calls, as a full disk would.
type failingStore struct {
	*store.DB
	mu    sync.Mutex
	calls int
	after int
}

func (f *failingStore) SuppressMany(ss []campaignd.Suppression) (int, error) {
	f.mu.Lock()
	f.calls++
	fail := f.calls > f.after
	f.mu.Unlock()
	if fail {
		return 0, errors.New("disk full")
	}
	return f.DB.SuppressMany(ss)
}

// A job whose import fails stays recorded and, run again, finishes with
// every number once.
func TestSuppressionImportRerun(t *testing.T) {
	db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
	var b bytes.Buffer
	for i := range 12_000 {
		fmt.Fprintf(&b, "55%08d\n", i)
	}
	dir := filepath.Join(root, campaignd.SuppressionsDir)
	os.MkdirAll(dir, 0o755)
	p := filepath.Join(dir, "big.csv")
	os.WriteFile(p, b.Bytes(), 0o644)
	job, err := db.CreateUpload(&campaignd.Upload{User: "syniverse", Path: "suppressions/big.csv", FileName: "big.csv", Via: campaignd.ViaSTOR})
	if err != nil {
		t.Fatal(err)
	}
	in := newIngester(t, &failingStore{DB: db, after: 1}, root, testOptions())
	if _, err := in.Run(context.Background(), job); err == nil {
		t.Fatal("no error from a failing store")
	}
	if jobs, _ := db.Jobs(); len(jobs) != 1 {
		t.Fatalf("%d jobs after a failure, want 1", len(jobs))
	}
	if _, err := newIngester(t, db, root, testOptions()).Run(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	u, _ := db.Upload(job.Upload.ID)
	if n, _ := db.SuppressionCount(); n != 12_000 || u.Outcome != campaignd.UploadAccepted {
		t.Fatalf("list %d, upload %+v", n, u)
	}
	if jobs, _ := db.Jobs(); len(jobs) != 0 {
		t.Fatalf("%d jobs left", len(jobs))
	}
}

func TestIsSuppressionUpload(t *testing.T) {
	for p, want := range map[string]bool{
		"suppressions/a.csv": true, "/suppressions/a.csv": true, "Suppressions/x/a.csv": true,
		"a.csv": false, "/a.csv": false, "other/suppressions/a.csv": false, "suppressions.csv": false,
		"../suppressions/a.csv": true, // cleaned: still inside the jail's suppressions/
	} {
		if got := IsSuppressionUpload(&campaignd.Upload{Path: p}); got != want {
			t.Errorf("%q: %v, want %v", p, got, want)
		}
	}
}

func TestImportList(t *testing.T) {
	db := testenv.OpenStoreOnDisk(t)
	entry := campaignd.Suppression{Reason: campaignd.SuppressImport, Source: "console: x.csv", By: "ana"}
	res, bad, err := ImportList(context.Background(), strings.NewReader("numero\n5512345678\n12\n5512345678\n5500000001"), nil, db, entry)
	if err != nil || res.Added != 2 || res.Valid != 2 || res.Invalid != 1 || len(bad) != 1 || bad[0].Line != 3 {
		t.Fatalf("ImportList = %+v %+v %v", res, bad, err)
	}
	if s, _ := db.Suppressed("525500000001"); s == nil || s.By != "ana" || s.Source != "console: x.csv" {
		t.Fatalf("entry %+v", s)
	}
	if _, _, err := ImportList(context.Background(), strings.NewReader("abc\n"), nil, db, entry); campaignd.ErrorCode(err) != campaignd.EINVALID {
		t.Fatalf("no valid number: %v", err)
	}
}

func TestNumberRules(t *testing.T) {
	r := NewNumberRules([]string{"US"})
	for raw, want := range map[string]string{"5512345678": "525512345678", "+52 55 1234 5678": "525512345678",
		"0445512345678": "525512345678", "+1 415 555 0100": "14155550100"} {
		if got, err := r.Normalize(raw); err != nil || got != want {
			t.Errorf("%q = %q, %v", raw, got, err)
		}
	}
	for _, raw := range []string{"", "123", "+44 20 7946 0958", "55123456789012345"} {
		_, err := r.Normalize(raw)
		if campaignd.ErrorCode(err) != campaignd.EINVALID || (raw != "" && !strings.Contains(campaignd.ErrorMessage(err), raw)) {
			t.Errorf("%q: %v", raw, err)
		}
	}
}

// BenchmarkSuppressImport100k imports a REPEP-sized list of 100,000
// numbers dropped into suppressions/, on an on-disk store: read,
// normalise, write in batches, place the result.
func BenchmarkSuppressImport100k(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString("telefono\n")
	for i := range 100_000 {
		fmt.Fprintf(&buf, "+52 55 %04d %04d\n", i/10000, i%10000)
	}
	content := buf.String()
	b.SetBytes(int64(len(content)))
	for b.Loop() {
		b.StopTimer()
		db, root := testenv.OpenStoreOnDisk(b), jailDir(b)
		b.StartTimer()
		u, err := runImport(b, db, root, "repep.csv", content, campaignd.ViaSTOR)
		if err != nil || u.Imported != 100_000 {
			b.Fatalf("%+v, %v", u, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Seconds())/float64(b.N), "s/import")
}

// BenchmarkIngest1MOptedOut is BenchmarkIngest1M with 100,000 of the
// file's numbers on a suppression list of 200,000: the cost of checking
// every row against the list.
func BenchmarkIngest1MOptedOut(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	src := filepath.Join(dir, "source.csv")
	size := writeBenchFile(b, src, n)
	b.SetBytes(size)
	list := make([]campaignd.Suppression, 0, 200_000)
	for i := 0; i < n; i += 10 {
		list = append(list, campaignd.Suppression{Number: fmt.Sprintf("5255%08d", i), Reason: campaignd.SuppressImport})
		list = append(list, campaignd.Suppression{Number: fmt.Sprintf("5256%08d", i), Reason: campaignd.SuppressImport})
	}
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		db, root := testenv.OpenStoreOnDisk(b), jailDir(b)
		if _, err := db.SuppressMany(list); err != nil {
			b.Fatal(err)
		}
		in := newIngester(b, db, root, testOptions())
		name := fmt.Sprintf("big%d.csv", i)
		if err := os.Link(src, filepath.Join(root, name)); err != nil {
			b.Fatal(err)
		}
		job, err := db.CreateUpload(&campaignd.Upload{User: "syniverse", Path: "/" + name, FileName: name,
			Size: size, ReceivedAt: testNow})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		bc, err := in.Run(context.Background(), job)
		if err != nil || bc == nil || bc.Counts.Total != n-n/10 || bc.Counts.OptedOut != n/10 {
			b.Fatalf("Run = %+v, %v", bc, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
