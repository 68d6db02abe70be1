package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"campaignd"
	"campaignd/internal/testenv"
)

// Every upload that got a 226 keeps its own bytes and its own outcome, even
// when several clients STOR the same name at once, or the name is uploaded
// again while the first is still waiting for ingest: N uploads, N upload
// records with N different SHA-256, N broadcasts, N files in processed/.
func TestConcurrentUploadsToOneNameEachKept(t *testing.T) {
	for _, n := range []int{2, 6} {
		t.Run(fmt.Sprintf("%d clients", n), func(t *testing.T) {
			m := MustRunMain(t, testConfig(t.TempDir()))
			contents := make([]string, n)
			want := map[string]int{} // SHA-256 -> rows
			for i := range contents {
				contents[i] = csvFile("", 3+i) // different rows, different SHA-256
				sum := sha256.Sum256([]byte(contents[i]))
				want[hex.EncodeToString(sum[:])] = 3 + i
			}
			// Log in first, then start every STOR at once.
			clients := make([]*ftp.ServerConn, n)
			for i := range clients {
				clients[i] = ftpLogin(t, m.FTP.Addr())
			}
			start := make(chan struct{})
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs[i] = clients[i].Stor("same.csv", strings.NewReader(contents[i]))
				}()
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("STOR %d: %v", i, err)
				}
			}

			var ups []*campaignd.Upload
			testenv.Eventually(t, 30*time.Second, "every upload ingested", func() bool {
				ups, _, _ = m.DB.Uploads(0, 100)
				if len(ups) < n {
					return false
				}
				for _, u := range ups {
					if u.Outcome == campaignd.UploadReceived {
						return false
					}
				}
				return true
			})
			if len(ups) != n {
				t.Fatalf("%d upload records, want %d", len(ups), n)
			}
			seen := map[string]bool{}
			results := map[string]bool{}
			for _, u := range ups {
				rows, ok := want[u.SHA256]
				switch {
				case !ok:
					t.Errorf("upload %d: SHA-256 %s matches no file sent", u.ID, u.SHA256)
				case seen[u.SHA256]:
					t.Errorf("upload %d: SHA-256 %s recorded twice", u.ID, u.SHA256)
				}
				seen[u.SHA256] = true
				if u.Path != "/same.csv" || u.FileName != "same.csv" || u.Via != campaignd.ViaSTOR || u.Stored == "" {
					t.Errorf("upload %d: path %q file %q via %q stored %q", u.ID, u.Path, u.FileName, u.Via, u.Stored)
				}
				if u.Outcome != campaignd.UploadAccepted || u.BroadcastID == 0 {
					t.Errorf("upload %d: outcome %s, errors %+v", u.ID, u.Outcome, u.Errors)
					continue
				}
				b, err := m.DB.Broadcast(u.BroadcastID)
				if err != nil {
					t.Fatal(err)
				}
				if b.Counts.Total != int64(rows) {
					t.Errorf("upload %d: broadcast of %d rows, want %d (its own file)", u.ID, b.Counts.Total, rows)
				}
				results[u.ResultPath] = true
				got, err := os.ReadFile(filepath.Join(jail(m), filepath.FromSlash(u.ResultPath)))
				if err != nil {
					t.Errorf("upload %d: result file: %v", u.ID, err)
				} else if s := sha256.Sum256(got); hex.EncodeToString(s[:]) != u.SHA256 {
					t.Errorf("upload %d: %s holds another upload's bytes", u.ID, u.ResultPath)
				}
			}
			if len(results) != n {
				t.Errorf("result paths %v, want %d different", results, n)
			}
			if !results["processed/same.csv"] {
				t.Errorf("result paths %v, want one to be processed/same.csv", results)
			}
			// Nothing is left waiting, and nothing is left at the uploaded name.
			if q, _ := os.ReadDir(filepath.Join(jail(m), ".campaignd-upload-queue")); len(q) != 0 {
				t.Errorf("queue still holds %d files", len(q))
			}
			if fileExists(filepath.Join(jail(m), "same.csv")) {
				t.Error("same.csv left at the uploaded name")
			}
		})
	}
}

// A re-upload of a name whose first upload is still waiting for ingest
// never touches the first: both keep their bytes and outcome.
func TestReuploadWhileQueuedKeepsBoth(t *testing.T) {
	m := MustRunMain(t, testConfig(t.TempDir()))
	c := ftpLogin(t, m.FTP.Addr())
	first, second := csvFile("", 4), csvFile("", 7)
	for _, body := range []string{first, second} {
		if err := c.Stor("again.csv", strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	// Renaming a third file onto the same name is one more upload.
	third := csvFile("", 9)
	if err := c.Stor("again.csv.part", strings.NewReader(third)); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("again.csv.part", "again.csv"); err != nil {
		t.Fatal(err)
	}
	var ups []*campaignd.Upload
	testenv.Eventually(t, 30*time.Second, "three uploads ingested", func() bool {
		ups, _, _ = m.DB.Uploads(0, 100)
		done := 0
		for _, u := range ups {
			if u.Outcome == campaignd.UploadAccepted {
				done++
			}
		}
		return done == 3
	})
	rows := map[int64]bool{}
	for _, u := range ups {
		b, err := m.DB.Broadcast(u.BroadcastID)
		if err != nil {
			t.Fatal(err)
		}
		rows[b.Counts.Total] = true
	}
	if !rows[4] || !rows[7] || !rows[9] {
		t.Errorf("broadcast sizes %v, want 4, 7 and 9 rows", rows)
	}
}

// A job recorded before a crash carries no on-disk path (the store keeps
// none): ingest finds the queued bytes from Upload.Stored, not at the name
// the partner gave, where another upload may now be.
func TestRecordedJobFindsQueuedBytesAfterRestart(t *testing.T) {
	m := MustRunMain(t, testConfig(t.TempDir()))
	queued := csvFile("", 6)
	dir := filepath.Join(jail(m), ".campaignd-upload-queue")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ABC"), []byte(queued), 0o640); err != nil {
		t.Fatal(err)
	}
	// Another file now sits at the uploaded name: it must not be the one ingested.
	if err := os.WriteFile(filepath.Join(jail(m), "late.csv"), []byte(csvFile("", 2)), 0o640); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(queued))
	up := &campaignd.Upload{User: testFTPUser, Path: "/late.csv", Stored: "/.campaignd-upload-queue/ABC",
		FileName: "late.csv", Size: int64(len(queued)), SHA256: hex.EncodeToString(sum[:]),
		ReceivedAt: time.Now(), Via: campaignd.ViaSTOR}
	if _, err := m.DB.CreateUpload(up); err != nil {
		t.Fatal(err)
	}
	m.kick <- struct{}{}
	var u *campaignd.Upload
	testenv.Eventually(t, 15*time.Second, "job ingested", func() bool {
		u, _ = m.DB.Upload(up.ID)
		return u != nil && u.Outcome != campaignd.UploadReceived
	})
	if u.Outcome != campaignd.UploadAccepted || u.ResultPath != "processed/late.csv" {
		t.Fatalf("upload = %+v", u)
	}
	if b, err := m.DB.Broadcast(u.BroadcastID); err != nil || b.Counts.Total != 6 {
		t.Fatalf("broadcast = %+v, %v; want the 6 queued rows", b, err)
	}
	if !fileExists(filepath.Join(jail(m), "late.csv")) {
		t.Error("the file at the uploaded name was taken")
	}
}
