package ingest

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/golden")

// TestErrorsFileGolden: <name>.errors.csv in each ingest.language, against
// golden files: every kind of row error with its reason (a duplicate names
// the line of its first occurrence), and file errors of the validity
// column. The reasons are the console's words (campaignd.ExplainRowError).
func TestErrorsFileGolden(t *testing.T) {
	for _, tc := range []struct {
		fixture, dir string
		validity     time.Duration // of the accepted broadcast
	}{
		{"row-errors.csv", campaignd.ProcessedDir, 36 * time.Hour},
		{"validity-bad.csv", campaignd.RejectedDir, 0},
		{"validity-differs.csv", campaignd.RejectedDir, 0},
		{"too-many-invalid.csv", campaignd.RejectedDir, 0},
	} {
		for _, lang := range []string{campaignd.LangEN, campaignd.LangES} {
			t.Run(tc.fixture+"/"+lang, func(t *testing.T) {
				db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
				o := testOptions()
				o.Language = lang
				o.AllowedCountries = []string{"MX"}
				if tc.fixture == "row-errors.csv" {
					o.MaxInvalidPercent = 100
				}
				job := upload(t, db, root, tc.fixture, fixture(t, tc.fixture))
				b, err := newIngester(t, db, root, o).Run(context.Background(), job)
				if err != nil {
					t.Fatal(err)
				}
				if (b != nil) != (tc.dir == campaignd.ProcessedDir) {
					t.Fatalf("broadcast %+v, want the file in %s", b, tc.dir)
				}
				if b != nil && b.Validity != tc.validity {
					t.Errorf("validity %v, want %v", b.Validity, tc.validity)
				}
				got := readFile(t, filepath.Join(root, tc.dir, tc.fixture+".errors.csv"))
				golden := filepath.Join("testdata", "golden", tc.fixture+"."+lang+".errors.csv")
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update to write it)", err)
				}
				if got != string(want) {
					t.Errorf("errors.csv =\n%s\nwant (%s)\n%s", got, golden, want)
				}
				// The upload keeps the stable kinds in English; the console
				// explains them in its user's language.
				u, err := db.Upload(job.Upload.ID)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range u.Errors {
					if e.Line > 0 && tc.fixture == "row-errors.csv" && !isKind(e.Error) {
						t.Errorf("stored row error %q is not a stable kind", e.Error)
					}
				}
			})
		}
	}
}

func isKind(s string) bool {
	switch s {
	case campaignd.RowInvalidRecipient, campaignd.RowDuplicate, campaignd.RowEmptyMessage, campaignd.RowTooLong,
		campaignd.RowFieldCount, campaignd.RowOptedOut:
		return true
	}
	return false
}
