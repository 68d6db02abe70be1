package ingest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"campaignd"
)

// TestEveryFileErrorHasSpanish checks every file and row error ingest
// writes, for every fixture and a set of hostile files, against the
// Spanish of row errors: .errors.csv in Spanish and the console must never
// fall back to English.
func TestEveryFileErrorHasSpanish(t *testing.T) {
	files := map[string][]byte{
		"truncated-quote.csv": []byte("telefono,mensaje\n5512345678,\"hola\n"),
		"truncated-line.csv":  []byte("telefono,mensaje\n5512345678,hola"),
		"bare-quote.csv":      []byte("telefono,mensaje\n5512345678,ho\"la\n"),
		"quote-extra.csv":     []byte("telefono,mensaje\n5512345678,\"ho\"la\"\n"),
		"long-field.csv":      []byte("telefono,mensaje\n5512345678,\"" + strings.Repeat("a", 70<<10) + "\"\n"),
		"long-record.csv":     []byte("telefono,mensaje\n5512345678," + strings.Repeat("a,", 600<<10) + "\n"),
		"far-date.csv":        []byte("telefono,mensaje,fecha\n5512345678,hola,31/12/2099 10:00\n"),
		"bad-date.csv":        []byte("telefono,mensaje,fecha\n5512345678,hola,mañana\n"),
		"sender-digits.csv":   []byte("telefono,mensaje,remitente\n5512345678,hola,1234567890123456\n"),
		"sender-long.csv":     []byte("telefono,mensaje,remitente\n5512345678,hola,PaybackMexico\n"),
		"sender-accent.csv":   []byte("telefono,mensaje,remitente\n5512345678,hola,Campañá\n"),
		"sender-control.csv":  []byte("telefono,mensaje,remitente\n5512345678,hola,\"Pay\x01\"\n"),
		"no-rows.csv":         []byte("telefono,mensaje\n"),
		"all-bad.csv":         []byte("telefono,mensaje\n12,hola\n+1 555,hola\n"),
		"empty.csv":           {},
		"nul.csv":             []byte("telefono,mensaje\n55\x0012345678,hola\n"),
	}
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".csv") {
			files[e.Name()] = fixture(t, e.Name())
		}
	}
	o := testOptions()
	o.MaxFieldBytes, o.MaxRecordBytes = 64<<10, 1<<20
	seen := 0
	for name, data := range files {
		res, err := NewIngester(nil, o).Check(bytes.NewReader(data), filepath.Base(name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, fe := range res.Errors {
			seen++
			es := campaignd.ExplainRowError(campaignd.RowErrorWords(campaignd.LangES), fe)
			en := campaignd.ExplainRowError(campaignd.RowErrorWords(campaignd.LangEN), fe)
			if es == en {
				t.Errorf("%s line %d: no Spanish for %q", name, fe.Line, fe.Error)
			}
		}
	}
	if seen < len(files) {
		t.Fatalf("only %d errors from %d files: the hostile files did not fail", seen, len(files))
	}
}
