package ingest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"campaignd"
	"campaignd/internal/testenv"
)

// FuzzIngest feeds arbitrary files to the reader/validator: it must never
// panic, every data row must be counted once, and every error must have a
// line.
func FuzzIngest(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.csv"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil && len(b) < 4096 {
			f.Add(b)
		}
	}
	in := NewIngester(nil, testOptions())
	f.Fuzz(func(t *testing.T, data []byte) {
		var rowErrs []campaignd.FileError
		rows := 0
		oc, err := in.evaluate(context.Background(), bytes.NewReader(data), "fuzz.csv", false,
			func(r *campaignd.Row) error {
				rows++
				if r.Recipient == "" || r.Text == "" || r.Segments < 1 || r.Segments > DefaultMaxSegments || r.Line < 2 {
					t.Errorf("bad row %+v", r)
				}
				return nil
			},
			func(e campaignd.FileError) error { rowErrs = append(rowErrs, e); return nil })
		if err != nil {
			t.Fatalf("evaluate: %v", err)
		}
		v := &oc.v
		maxRowsHit := false
		for _, e := range v.FileErrors {
			if strings.HasPrefix(e.Error, "more than") {
				maxRowsHit = true
			}
		}
		if !maxRowsHit && v.Valid+v.Invalid+v.Dup != v.Rows {
			t.Errorf("valid %d + invalid %d + duplicate %d != rows %d", v.Valid, v.Invalid, v.Dup, v.Rows)
		}
		if !v.rejected() && rows != v.Valid {
			t.Errorf("%d rows emitted, %d valid", rows, v.Valid)
		}
		for _, e := range append(append([]campaignd.FileError{}, v.FileErrors...), rowErrs...) {
			if e.Line < 0 || e.Error == "" {
				t.Errorf("bad error %+v", e)
			}
		}
		if v.RowErrors != len(rowErrs) {
			t.Errorf("RowErrors %d, %d reported", v.RowErrors, len(rowErrs))
		}
		if oc.accepted() && (oc.status == "" || oc.name == "" || oc.sender == "") {
			t.Errorf("accepted without status, name or sender: %+v", oc)
		}
	})
}

// writeBenchFile writes a file of n rows like Payback's: a member id, two
// placeholder columns and a templated message.
func writeBenchFile(tb testing.TB, p string, n int) int64 {
	tb.Helper()
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "Recipient,Message,Payback Member ID,Nombre,Puntos,Campaign Name")
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, "55%08d,\"Hola {Nombre}, tienes {Puntos} puntos Payback. Canjealos antes del domingo.\",60%08d,Socio%d,%d,Puntos Noviembre\n",
			i, i, i%1000, i%5000)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	fi, _ := f.Stat()
	f.Close()
	return fi.Size()
}

// BenchmarkIngest1M ingests a 1,000,000-row file into an on-disk store:
// upload complete → broadcast committed (SPEC §10: ≥ 250,000 rows/s).
func BenchmarkIngest1M(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	src := filepath.Join(dir, "source.csv")
	size := writeBenchFile(b, src, n)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		db, root := testenv.OpenStoreOnDisk(b), jailDir(b)
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
		runtime.GC()
		b.StartTimer()
		bc, err := in.Run(context.Background(), job)
		if err != nil || bc == nil || bc.Counts.Total != n {
			b.Fatalf("Run = %+v, %v", bc, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(peakRSS())/(1<<20), "MB-peak-rss")
}

// peakRSS returns the process's peak resident set size (Linux VmHWM), or 0.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
