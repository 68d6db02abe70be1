package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
	"campaignd/pipeline/ingest"
)

func TestUploadBecomesBroadcast(t *testing.T) {
	m := MustRunMain(t, testConfig(t.TempDir()))
	for _, tt := range []struct {
		name, date string
		want       campaignd.Status
	}{
		{"pending.csv", "", campaignd.StatusPending},
		{"past.csv", "2020-01-01 10:00", campaignd.StatusSending},
		{"future.csv", time.Now().Add(48 * time.Hour).Format("2006-01-02 15:04"), campaignd.StatusScheduled},
	} {
		t.Run(tt.name, func(t *testing.T) {
			upload(t, m.FTP.Addr(), tt.name, csvFile(tt.date, 3))
			var b *campaignd.Broadcast
			testenv.Eventually(t, 5*time.Second, "broadcast", func() bool {
				list, _, _ := m.DB.Broadcasts(campaignd.BroadcastFilter{})
				for _, x := range list {
					if x.FileName == tt.name {
						b = x
						return true
					}
				}
				return false
			})
			if b.Counts.Total != 3 || b.Name != "Prueba" {
				t.Fatalf("broadcast = %+v", b)
			}
			if tt.want != campaignd.StatusSending && b.Status != tt.want {
				t.Fatalf("status = %s, want %s", b.Status, tt.want)
			}
			if tt.want == campaignd.StatusSending && b.Status != campaignd.StatusSending && b.Status != campaignd.StatusCompleted {
				t.Fatalf("status = %s, want sending or completed", b.Status)
			}
			testenv.Eventually(t, 5*time.Second, "processed file", func() bool {
				return fileExists(filepath.Join(jail(m), "processed", tt.name))
			})
		})
	}
}

// apiFile is an upload as GET /api/v1/files shows it.
type apiFile struct {
	ID          uint64                `json:"id"`
	FileName    string                `json:"file_name"`
	Outcome     string                `json:"outcome"`
	BroadcastID uint64                `json:"broadcast_id"`
	Errors      []campaignd.FileError `json:"errors"`
	ErrorCount  int                   `json:"error_count"`
	ResultPath  string                `json:"result_path"`
}

// fileResult waits until the upload of name has an outcome in the API's
// Files list and returns it, with the size of the list's JSON.
func fileResult(t *testing.T, m *Main, name string) (apiFile, int) {
	t.Helper()
	var found apiFile
	var size int
	testenv.Eventually(t, 20*time.Second, "outcome of "+name, func() bool {
		req, _ := http.NewRequest("GET", webBase(m)+"/api/v1/files", nil)
		req.SetBasicAuth("viewer", testPass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var l struct {
			Files []apiFile `json:"files"`
		}
		if err := json.Unmarshal(body, &l); err != nil {
			t.Fatalf("files: %v: %.200s", err, body)
		}
		for _, f := range l.Files {
			if f.FileName == name && f.Outcome != campaignd.UploadReceived {
				found, size = f, len(body)
				return true
			}
		}
		return false
	})
	return found, size
}

// noJobsLeft fails unless every ingest job has ended.
func noJobsLeft(t *testing.T, m *Main) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, "no ingest job left", func() bool {
		jobs, err := m.DB.Jobs()
		return err == nil && len(jobs) == 0
	})
}

// rows writes n good rows of phone,message[,extra].
func goodRows(n int, extra string) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "55%08d,hola%s\n", i, extra)
	}
	return b.String()
}

// TestHostileUploads: each class of hostile or broken file, uploaded over
// real FTP, ends as a clear rejection (or an acceptance with bounded row
// errors) in the API's Files list and in rejected/ or processed/, with no
// job left to retry and no broadcast from a rejected file.
func TestHostileUploads(t *testing.T) {
	m := MustRunMain(t, testConfig(t.TempDir()))
	longName := strings.Repeat("n", 246) + ".csv" // 250 bytes: no room for a timestamp suffix
	cases := []struct {
		name, content string
		outcome       string
		want          string // in the first error, or in the errors file
		errLine       int    // line of the first error (-1: any)
	}{
		{"bomb-gsm.csv", "phone,message,A\n5512345678," + strings.Repeat("{A}", 21_000) + "," + strings.Repeat("a", 60_000) + "\n" + goodRows(2, ",x"),
			campaignd.UploadRejected, "expands to 1260000000 bytes", -1},
		{"bomb-ucs2.csv", "phone,message,A\n" + goodRows(20, ",x") + "5512345678,¿" + strings.Repeat("{A}", 20_000) + "," + strings.Repeat("á", 30_000) + "\n",
			campaignd.UploadAccepted, "message too long", -1},
		{"long-field-row2.csv", "phone,message\n5512345678," + strings.Repeat("x", 70_000) + "\n" + goodRows(3, ""),
			campaignd.UploadRejected, "longer than 65536 bytes", 2},
		{"long-field-row40.csv", "phone,message\n" + goodRows(38, "") + "5512345678,\"" + strings.Repeat("x\n", 40_000) + "\"\n",
			campaignd.UploadRejected, "longer than 65536 bytes", 40},
		{"long-record.csv", "phone,message,a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r\n" + strings.Repeat("5512345678,hola"+strings.Repeat(","+strings.Repeat("v", 60_000), 18)+"\n", 2),
			campaignd.UploadRejected, "longer than 1048576 bytes", 2},
		{"far-date.csv", "phone,message,fecha\n5512345678,hola,9999-12-31 23:59\n5512345679,hola,9999-12-31 23:59\n",
			campaignd.UploadRejected, "more than a year ahead", 2},
		{"long-sender.csv", "phone,message,sender\n5512345678,hola," + strings.Repeat("S", 40) + "\n",
			campaignd.UploadRejected, "at most 11", 2},
		{"cut-line.csv", "phone,message\n" + goodRows(50, "") + "5512345678,hol",
			campaignd.UploadRejected, "truncated upload: the last line (52) has no line end", 52},
		{"cut-quote.csv", "phone,message\n" + goodRows(5, "") + "5512345678,\"hola\nmundo",
			campaignd.UploadRejected, "truncated upload: a quoted field opened on line 7", -1},
		{longName, "phone,message\n" + goodRows(3, ""), campaignd.UploadAccepted, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name[:min(len(tc.name), 20)], func(t *testing.T) {
			upload(t, m.FTP.Addr(), tc.name, tc.content)
			f, _ := fileResult(t, m, tc.name)
			if f.Outcome != tc.outcome {
				t.Fatalf("outcome %s, errors %+v", f.Outcome, f.Errors)
			}
			dir := "processed"
			if tc.outcome == campaignd.UploadRejected {
				dir = "rejected"
				if f.BroadcastID != 0 {
					t.Errorf("rejected with broadcast %d", f.BroadcastID)
				}
			}
			if !strings.HasPrefix(f.ResultPath, dir+"/") || len(path.Base(f.ResultPath)) > 239 {
				t.Fatalf("result path %q", f.ResultPath)
			}
			if !fileExists(filepath.Join(jail(m), filepath.FromSlash(f.ResultPath))) {
				t.Fatalf("%s not in the jail", f.ResultPath)
			}
			if tc.want == "" {
				return
			}
			errs, err := os.ReadFile(filepath.Join(jail(m), filepath.FromSlash(f.ResultPath)+".errors.csv"))
			if err != nil || !strings.Contains(string(errs), tc.want) {
				t.Fatalf("errors file lacks %q (%v):\n%.500s", tc.want, err, errs)
			}
			if tc.errLine >= 0 && (len(f.Errors) == 0 || f.Errors[0].Line != tc.errLine || !strings.Contains(f.Errors[0].Error, tc.want)) {
				t.Fatalf("first error %+v, want %q on line %d", f.Errors, tc.want, tc.errLine)
			}
		})
	}
	noJobsLeft(t, m)
}

// TestErrorOutputBoundedOverFTP: a 64 KB column name (matching once '_' is
// stripped) and many bad rows make a bounded errors file and a small entry
// in the API's Files list, with the exact error count.
func TestErrorOutputBoundedOverFTP(t *testing.T) {
	m := MustRunMain(t, testConfig(t.TempDir()))
	for _, bad := range []int{3, 15_000} {
		name := fmt.Sprintf("amplify-%d.csv", bad)
		var b strings.Builder
		b.WriteString("tele" + strings.Repeat("_", 64_000) + "fono,message\n")
		for i := 0; i < bad; i++ {
			fmt.Fprintf(&b, "=1+%d,hola\n", i)
		}
		b.WriteString(goodRows(bad*10, ""))
		upload(t, m.FTP.Addr(), name, b.String())
		f, size := fileResult(t, m, name)
		if f.Outcome != campaignd.UploadAccepted || f.ErrorCount != bad || len(f.Errors) > 20 {
			t.Fatalf("outcome %s, %d errors listed, count %d", f.Outcome, len(f.Errors), f.ErrorCount)
		}
		if size > 64<<10 {
			t.Errorf("GET /api/v1/files answered %d bytes", size)
		}
		errs, err := os.ReadFile(filepath.Join(jail(m), "processed", name+".errors.csv"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(errs), "\r\n"), "\r\n")
		wantLines := 1 + min(bad, ingest.DefaultMaxErrorRows)
		if bad > ingest.DefaultMaxErrorRows {
			wantLines++
			if last := lines[len(lines)-1]; !strings.Contains(last, fmt.Sprintf("and %d more", bad-ingest.DefaultMaxErrorRows)) {
				t.Errorf("last line %q", last)
			}
		}
		if len(lines) != wantLines || len(errs) > wantLines*400 { // a cut value (≤ 200) and the reason in words
			t.Fatalf("%d lines (want %d), %d bytes", len(lines), wantLines, len(errs))
		}
		if !strings.Contains(lines[1], "…") || !strings.Contains(lines[1], ",'=1+0,") {
			t.Errorf("column not cut or value not neutralised: %.300q", lines[1])
		}
	}
	noJobsLeft(t, m)
}

// TestUnplaceableUploadEnds: a file named processed (where the processed/
// folder must go) makes the next upload's result unplaceable: it is
// rejected at once with the reason, in rejected/, never retried; the
// metrics show the failed ingest and no retry. The partner cannot make that
// file over FTP (result folders are read-only to it), so the test puts it
// on disk, as an operator's mistake would.
func TestUnplaceableUploadEnds(t *testing.T) {
	m := MustRunMain(t, testConfig(t.TempDir()))
	if err := os.MkdirAll(jail(m), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(jail(m), "processed"), []byte("not a folder\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	upload(t, m.FTP.Addr(), "x.csv", "phone,message\n"+goodRows(3, ""))
	f, _ := fileResult(t, m, "x.csv")
	if f.Outcome != campaignd.UploadRejected || len(f.Errors) != 1 || !strings.Contains(f.Errors[0].Error, "in the way") || f.ResultPath != "rejected/x.csv" {
		t.Fatalf("upload %+v", f)
	}
	noJobsLeft(t, m)
	var body []byte
	wants := []string{`campaignd_ingest_duration_seconds_count{result="failed"} 1`, "campaignd_ingest_retries_total 0"}
	testenv.Eventually(t, 10*time.Second, "the failed ingest in the metrics", func() bool {
		resp, err := http.Get("http://" + m.MetricsAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range wants {
			if !strings.Contains(string(body), want) {
				return false
			}
		}
		return true
	})
}

// TestReportNeutralisesFormulasEndToEnd: formulas in the Campaign Name,
// Sender and Member ID of an uploaded file reach the day's report (over
// the API) neutralised.
func TestReportNeutralisesFormulasEndToEnd(t *testing.T) {
	m := MustRunMain(t, testConfig(t.TempDir()))
	content := "Recipient,Message,Payback Member ID,Campaign Name,Sender,Date\n" +
		"5512345678,hola,\"=cmd|' /C calc'!A0\",\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",=1+1,2020-01-01 10:00\n" +
		"+52 55 1234 5679,hola,-5,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",=1+1,2020-01-01 10:00\n"
	upload(t, m.FTP.Addr(), "formulas.csv", content)
	b := broadcastOf(t, m, "formulas.csv")
	waitSettled(t, m, b.ID, 20*time.Second)
	day := time.Now().In(m.loc).Format("2006-01-02")
	req, _ := http.NewRequest("GET", webBase(m)+"/api/v1/reports/"+day+".csv", nil)
	req.SetBasicAuth(testAdmin, testPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	recs, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil || len(recs) != 3 {
		t.Fatalf("report: %d records, %v", len(recs), err)
	}
	for _, r := range recs[1:] {
		if r[0] != "'=1+1" || r[3] != `'=HYPERLINK("http://x","y")` {
			t.Errorf("sender %q, campaign %q", r[0], r[3])
		}
		switch r[1] {
		case "5512345678":
			if r[6] != "'=cmd|' /C calc'!A0" {
				t.Errorf("member id %q", r[6])
			}
		case "+52 55 1234 5679":
			if r[6] != "-5" {
				t.Errorf("member id %q", r[6])
			}
		default:
			t.Errorf("recipient %q", r[1])
		}
	}
}

// TestTruncationOnlyForSTOR: the same bytes without a final line end are
// rejected as truncated when a STOR completes them, and accepted when a
// rename does (the partner renames only once the file is whole).
func TestTruncationOnlyForSTOR(t *testing.T) {
	m := MustRunMain(t, testConfig(t.TempDir()))
	for _, n := range []int{1, 7, 300} {
		content := "phone,message\n" + goodRows(n, "")
		content = strings.TrimSuffix(content, "\n")
		stor := fmt.Sprintf("stor-%d.csv", n)
		upload(t, m.FTP.Addr(), stor, content)
		if f, _ := fileResult(t, m, stor); f.Outcome != campaignd.UploadRejected || len(f.Errors) == 0 ||
			!strings.HasPrefix(f.Errors[0].Error, "truncated upload: the last line ("+fmt.Sprint(n+1)+")") {
			t.Fatalf("STOR: %+v", f)
		}
		renamed := fmt.Sprintf("rnto-%d.csv", n)
		c := ftpLogin(t, m.FTP.Addr())
		if err := c.Stor(renamed+".part", strings.NewReader(content)); err != nil {
			t.Fatal(err)
		}
		if err := c.Rename(renamed+".part", renamed); err != nil {
			t.Fatal(err)
		}
		if f, _ := fileResult(t, m, renamed); f.Outcome != campaignd.UploadAccepted {
			t.Fatalf("RNTO: %+v", f)
		}
	}
	noJobsLeft(t, m)
}
