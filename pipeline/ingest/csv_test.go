package ingest

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"campaignd"
)

// testNow is "today" in the tests: the scheduled sample's 2026-11-28 is in
// the future.
var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, mexico())

func mexico() *time.Location {
	loc, err := time.LoadLocation("America/Mexico_City")
	if err != nil {
		panic(err)
	}
	return loc
}

// testOptions are the options of the tests: the defaults, a fixed now, and
// the United States allowed besides Mexico.
func testOptions() Options {
	return Options{
		Location:         mexico(),
		Now:              func() time.Time { return testNow },
		AllowedCountries: []string{"MX", "US"},
	}
}

type wantErr struct {
	line     int
	column   string
	contains string
}

func hasError(errs []campaignd.FileError, w wantErr) bool {
	for _, e := range errs {
		if e.Line == w.line && e.Column == w.column && strings.Contains(e.Error, w.contains) {
			return true
		}
	}
	return false
}

func checkFixture(t *testing.T, name string, opts func(*Options)) *CheckResult {
	t.Helper()
	o := testOptions()
	if opts != nil {
		opts(&o)
	}
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := NewIngester(nil, o).Check(f, name)
	if err != nil {
		t.Fatalf("Check(%s): %v", name, err)
	}
	return res
}

func at(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, mexico())
}

func TestCheckFixtures(t *testing.T) {
	invalidPercent := func(p int) func(*Options) { return func(o *Options) { o.MaxInvalidPercent = p } }
	for _, tc := range []struct {
		name     string
		file     string
		opts     func(*Options)
		decision string
		status   campaignd.Status
		bname    string
		sender   string
		charset  string
		sched    time.Time
		rows     int
		valid    int
		invalid  int
		dup      int
		errs     []wantErr
	}{
		{name: "sample pending", file: "pending-example.csv", decision: "accepted", status: "pending", bname: "pending-example", sender: "28776", charset: "UTF-8", rows: 2, valid: 2},
		{name: "sample scheduled", file: "scheduled-example.csv", decision: "accepted", status: "scheduled", bname: "Puntos Noviembre", sender: "28776", charset: "UTF-8", sched: at(2026, 11, 28, 10, 0, 0), rows: 2, valid: 2},
		{name: "utf-8 with BOM", file: "utf8-bom.csv", decision: "accepted", status: "pending", bname: "utf8-bom", sender: "28776", charset: "UTF-8", rows: 2, valid: 2},
		{name: "windows-1252", file: "windows-1252.csv", decision: "accepted", status: "pending", bname: "Promoción Año", sender: "28776", charset: "Windows-1252", rows: 2, valid: 2},
		{name: "semicolon", file: "semicolon.csv", decision: "accepted", status: "pending", bname: "semicolon", sender: "28776", charset: "UTF-8", rows: 2, valid: 2},
		{name: "tab", file: "tab.csv", decision: "accepted", status: "pending", bname: "tab", sender: "28776", charset: "UTF-8", rows: 2, valid: 2},
		{name: "crlf", file: "crlf.csv", decision: "accepted", status: "pending", bname: "crlf", sender: "28776", charset: "UTF-8", rows: 2, valid: 2},
		{name: "quoted commas and newlines", file: "quoted.csv", opts: invalidPercent(50), decision: "accepted", status: "pending", bname: "quoted", sender: "28776", charset: "UTF-8", rows: 3, valid: 2, invalid: 1,
			errs: []wantErr{{6, "recipient", campaignd.RowInvalidRecipient}}},
		{name: "every recipient form", file: "recipients.csv", opts: invalidPercent(100), decision: "accepted", status: "pending", bname: "recipients", sender: "28776", charset: "UTF-8", rows: 17, valid: 8, invalid: 9,
			errs: []wantErr{{10, "recipient", "invalid recipient"}, {11, "recipient", "invalid recipient"}, {18, "recipient", "invalid recipient"}}},
		{name: "duplicate recipients", file: "duplicates.csv", decision: "accepted", status: "pending", bname: "duplicates", sender: "28776", charset: "UTF-8", rows: 5, valid: 2, dup: 3,
			errs: []wantErr{{3, "telefono", "duplicate"}, {5, "telefono", "duplicate"}, {6, "telefono", "duplicate"}}},
		{name: "gsm-7 and ucs-2", file: "encodings.csv", decision: "accepted", status: "pending", bname: "encodings", sender: "28776", charset: "UTF-8", rows: 3, valid: 3},
		{name: "segments", file: "segments.csv", opts: invalidPercent(50), decision: "accepted", status: "pending", bname: "segments", sender: "28776", charset: "UTF-8", rows: 6, valid: 4, invalid: 2,
			errs: []wantErr{{5, "message", "message too long"}, {7, "message", "message too long"}}},
		{name: "date yyyy-mm-dd hh:mm", file: "date-minutes.csv", decision: "accepted", status: "scheduled", bname: "date-minutes", sender: "28776", charset: "UTF-8", sched: at(2026, 11, 28, 10, 0, 0), rows: 2, valid: 2},
		{name: "date with seconds", file: "date-seconds.csv", decision: "accepted", status: "scheduled", bname: "date-seconds", sender: "28776", charset: "UTF-8", sched: at(2026, 11, 28, 10, 0, 30), rows: 2, valid: 2},
		{name: "date with T", file: "date-t.csv", decision: "accepted", status: "scheduled", bname: "date-t", sender: "28776", charset: "UTF-8", sched: at(2026, 11, 28, 10, 0, 30), rows: 2, valid: 2},
		{name: "date RFC 3339 with offset", file: "date-rfc3339.csv", decision: "accepted", status: "scheduled", bname: "date-rfc3339", sender: "28776", charset: "UTF-8", sched: time.Date(2026, 11, 28, 13, 0, 0, 0, time.UTC), rows: 2, valid: 2},
		{name: "date day first", file: "date-dayfirst.csv", decision: "accepted", status: "scheduled", bname: "date-dayfirst", sender: "28776", charset: "UTF-8", sched: at(2026, 11, 28, 10, 0, 0), rows: 2, valid: 2},
		{name: "date day first with seconds", file: "date-dayfirst-seconds.csv", decision: "accepted", status: "scheduled", bname: "date-dayfirst-seconds", sender: "28776", charset: "UTF-8", sched: at(2026, 11, 28, 10, 0, 30), rows: 2, valid: 2},
		{name: "date only", file: "date-only.csv", decision: "accepted", status: "scheduled", bname: "date-only", sender: "28776", charset: "UTF-8", sched: at(2026, 11, 28, 0, 0, 0), rows: 2, valid: 2},
		{name: "date in the past sends now", file: "date-past.csv", decision: "accepted", status: "sending", bname: "date-past", sender: "28776", charset: "UTF-8", sched: at(2026, 11, 1, 9, 0, 0), rows: 2, valid: 2},
		{name: "same instant written twice", file: "date-same-instant.csv", decision: "accepted", status: "scheduled", bname: "date-same-instant", sender: "28776", charset: "UTF-8", sched: at(2026, 11, 28, 10, 0, 0), rows: 2, valid: 2},
		{name: "empty date column is pending", file: "date-empty-column.csv", decision: "accepted", status: "pending", bname: "date-empty-column", sender: "28776", charset: "UTF-8", rows: 2, valid: 2},
		{name: "sender and campaign columns", file: "sender-campaign.csv", decision: "accepted", status: "pending", bname: "Navidad", sender: "PAYBACK", charset: "UTF-8", rows: 2, valid: 2},
		{name: "header aliases with accents and spaces", file: "header-accents.csv", decision: "accepted", status: "scheduled", bname: "Navidad", sender: "28776", charset: "UTF-8", sched: at(2026, 11, 28, 0, 0, 0), rows: 1, valid: 1},
		{name: "placeholders", file: "placeholders.csv", opts: invalidPercent(50), decision: "accepted", status: "pending", bname: "placeholders", sender: "28776", charset: "UTF-8", rows: 2, valid: 1, invalid: 1,
			errs: []wantErr{{3, "mensaje", "empty message"}}},
		{name: "blank rows ignored", file: "blank-rows.csv", decision: "accepted", status: "pending", bname: "blank-rows", sender: "28776", charset: "UTF-8", rows: 2, valid: 2},
		{name: "wrong number of fields", file: "field-count.csv", decision: "accepted", status: "pending", bname: "field-count", sender: "28776", charset: "UTF-8", rows: 33, valid: 31, invalid: 2,
			errs: []wantErr{{3, "", "wrong number of fields"}, {4, "", "wrong number of fields"}}},
		{name: "invalid at the limit", file: "at-invalid-limit.csv", decision: "accepted", status: "pending", bname: "at-invalid-limit", sender: "28776", charset: "UTF-8", rows: 10, valid: 9, invalid: 1},
		{name: "row problems", file: "row-problems.csv", opts: invalidPercent(20), decision: "accepted", status: "pending", bname: "row-problems", sender: "28776", charset: "UTF-8", rows: 23, valid: 20, invalid: 3,
			errs: []wantErr{{22, "phone", "invalid recipient"}, {23, "message", "empty message"}, {24, "message", "message too long"}}},

		// File-level errors.
		{name: "empty file", file: "empty.csv", decision: "rejected", errs: []wantErr{{0, "", "empty file"}}},
		{name: "blank lines only", file: "blank-lines.csv", decision: "rejected", charset: "UTF-8", errs: []wantErr{{0, "", "no header row"}}},
		{name: "binary", file: "binary.csv", decision: "rejected", errs: []wantErr{{2, "", "not a text file"}}},
		{name: "utf-16", file: "utf16.csv", decision: "rejected", errs: []wantErr{{1, "", "not a text file"}}},
		{name: "header only", file: "header-only.csv", decision: "rejected", charset: "UTF-8", errs: []wantErr{{0, "", "no valid row"}}},
		{name: "no header", file: "no-header.csv", decision: "rejected", charset: "UTF-8", errs: []wantErr{{1, "", "no header row"}}},
		{name: "no message column", file: "no-message.csv", decision: "rejected", charset: "UTF-8", errs: []wantErr{{1, "", "no message column"}}},
		{name: "no recipient column", file: "no-recipient.csv", decision: "rejected", charset: "UTF-8", errs: []wantErr{{1, "", "no recipient column"}}},
		{name: "column matched twice", file: "duplicate-column.csv", decision: "rejected", charset: "UTF-8", errs: []wantErr{{1, "", "both the recipient column"}}},
		{name: "same header twice", file: "duplicate-header.csv", decision: "rejected", charset: "UTF-8", errs: []wantErr{{1, "", "appears twice"}}},
		{name: "broken quoting", file: "broken-quote.csv", decision: "rejected", charset: "UTF-8", rows: 1, valid: 1, errs: []wantErr{{3, "", "broken CSV quoting"}}},
		{name: "unterminated quote", file: "unterminated-quote.csv", decision: "rejected", charset: "UTF-8", errs: []wantErr{{2, "", "broken CSV quoting"}}},
		{name: "differing dates", file: "date-mixed.csv", decision: "rejected", charset: "UTF-8", rows: 2, valid: 2, errs: []wantErr{{3, "date", "differs between rows"}}},
		{name: "some rows without date", file: "date-some-empty.csv", decision: "rejected", charset: "UTF-8", rows: 2, valid: 2, errs: []wantErr{{3, "date", "has none"}}},
		{name: "unparseable date", file: "date-bad.csv", decision: "rejected", charset: "UTF-8", rows: 2, valid: 2, errs: []wantErr{{2, "date", "unparseable date"}}},
		{name: "differing campaign names", file: "names-differ.csv", decision: "rejected", charset: "UTF-8", rows: 2, valid: 2, errs: []wantErr{{3, "campaign", "differs between rows"}}},
		{name: "differing senders", file: "senders-differ.csv", decision: "rejected", charset: "UTF-8", rows: 2, valid: 2, errs: []wantErr{{3, "sender", "differs between rows"}}},
		{name: "too many rows", file: "too-many-rows.csv", opts: func(o *Options) { o.MaxRows = 10 }, decision: "rejected", charset: "UTF-8", rows: 11, valid: 10, errs: []wantErr{{12, "", "more than 10 rows"}}},
		{name: "too many invalid rows", file: "too-many-invalid.csv", decision: "rejected", charset: "UTF-8", rows: 10, valid: 8, invalid: 2,
			errs: []wantErr{{0, "", "2 of 10 rows are invalid"}, {10, "phone", "invalid recipient"}, {11, "phone", "invalid recipient"}}},
		{name: "no valid row", file: "no-valid-row.csv", decision: "rejected", charset: "UTF-8", rows: 2, invalid: 2,
			errs: []wantErr{{0, "", "no valid row"}, {2, "phone", "invalid recipient"}, {3, "message", "empty message"}}},
		{name: "over the size limit", file: "crlf.csv", opts: func(o *Options) { o.MaxUploadBytes = 10 }, decision: "rejected", errs: []wantErr{{0, "", "over the size limit"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := checkFixture(t, tc.file, tc.opts)
			if res.Decision != tc.decision {
				t.Errorf("decision = %s, want %s; errors %+v", res.Decision, tc.decision, res.Errors)
			}
			if res.Status != tc.status || res.Name != tc.bname || res.Sender != tc.sender || res.Charset != tc.charset {
				t.Errorf("status, name, sender, charset = %q, %q, %q, %q; want %q, %q, %q, %q",
					res.Status, res.Name, res.Sender, res.Charset, tc.status, tc.bname, tc.sender, tc.charset)
			}
			if !res.ScheduledAt.Equal(tc.sched) {
				t.Errorf("scheduled at %v, want %v", res.ScheduledAt, tc.sched)
			}
			if res.Rows != tc.rows || res.Valid != tc.valid || res.Invalid != tc.invalid || res.Duplicate != tc.dup {
				t.Errorf("rows/valid/invalid/duplicate = %d/%d/%d/%d, want %d/%d/%d/%d; errors %+v",
					res.Rows, res.Valid, res.Invalid, res.Duplicate, tc.rows, tc.valid, tc.invalid, tc.dup, res.Errors)
			}
			for _, w := range tc.errs {
				if !hasError(res.Errors, w) {
					t.Errorf("no error %+v in %+v", w, res.Errors)
				}
			}
			if tc.decision == "accepted" && len(res.Errors) != tc.invalid+tc.dup && len(tc.errs) == 0 {
				t.Errorf("unexpected errors %+v", res.Errors)
			}
			if tc.decision == "rejected" && len(res.Errors) == 0 {
				t.Error("rejected without an error")
			}
		})
	}
}

// readRows evaluates a fixture and returns its valid rows.
func readRows(t *testing.T, name string, opts func(*Options)) ([]campaignd.Row, *outcome) {
	t.Helper()
	o := testOptions()
	o.MaxInvalidPercent = 100
	if opts != nil {
		opts(&o)
	}
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []campaignd.Row
	oc, err := NewIngester(nil, o).evaluate(context.Background(), f, name, false,
		func(r *campaignd.Row) error { rows = append(rows, *r); return nil },
		func(campaignd.FileError) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	return rows, oc
}

func TestRows(t *testing.T) {
	type row struct {
		line           int
		recipient, raw string
		member, text   string
		encoding       string
		segments       int
	}
	for _, tc := range []struct {
		name string
		file string
		want []row
	}{
		{name: "pending sample", file: "pending-example.csv", want: []row{
			{2, "525511112222", "5511112222", "6000000001", "Hola socio, hoy tienes 120 puntos. Responde BAJA para no recibir mensajes", "GSM-7", 1},
			{3, "525533334444", "044 55 3333 4444", "6000000002", "Hola socio, hoy tienes 75 puntos. Responde BAJA para no recibir mensajes", "GSM-7", 1},
		}},
		{name: "scheduled sample", file: "scheduled-example.csv", want: []row{
			{2, "525512345678", "5512345678", "6001234567", "Hola, tienes 1,250 puntos Payback. Canjéalos antes del domingo.", "GSM-7", 1},
			{3, "525587654321", "+52 55 8765 4321", "6007654321", "Hola, tienes 300 puntos Payback. Canjéalos antes del domingo.", "GSM-7", 1},
		}},
		{name: "bom", file: "utf8-bom.csv", want: []row{
			{2, "525512345678", "5512345678", "", "Hola Ñandú ü é", "UCS-2", 1},
			{3, "525512345679", "5512345679", "", "Otro", "GSM-7", 1},
		}},
		{name: "windows-1252", file: "windows-1252.csv", want: []row{
			{2, "525512345678", "5512345678", "", "Tienes 100 puntos, válidos hoy", "UCS-2", 1},
			{3, "525512345679", "5512345679", "", "Canjéalos ya señor", "GSM-7", 1},
		}},
		{name: "semicolon", file: "semicolon.csv", want: []row{
			{2, "525511112222", "5511112222", "6000000001", "Hola, socio", "GSM-7", 1},
			{3, "525511113333", "5511113333", "6000000002", "Adiós", "UCS-2", 1},
		}},
		{name: "tab", file: "tab.csv", want: []row{
			{2, "525511112222", "5511112222", "", "Hola Ana, bienvenido", "GSM-7", 1},
			{3, "525511113333", "5511113333", "", "Hola Luis; hasta pronto", "GSM-7", 1},
		}},
		{name: "quoted", file: "quoted.csv", want: []row{
			{2, "525511112222", "5511112222", "123", "Hola, socio\nsegunda línea\ntercera", "UCS-2", 1},
			{5, "525511113333", "5511113333", "456", `Dice "hola"`, "GSM-7", 1},
		}},
		{name: "recipient forms", file: "recipients.csv", want: []row{
			{2, "525511110001", "5511110001", "", "national", "GSM-7", 1},
			{3, "525511110002", "52 5511110002", "", "52 prefix", "GSM-7", 1},
			{4, "525511110003", "+52 (55) 1111-0003", "", "plus 52", "GSM-7", 1},
			{5, "525511110004", "0052 55 1111 0004", "", "0052", "GSM-7", 1},
			{6, "525511110005", "521 55 1111 0005", "", "old mobile 521", "GSM-7", 1},
			{7, "525511110006", "044 55 1111 0006", "", "044", "GSM-7", 1},
			{8, "525511110007", "045.55.1111.0007", "", "045", "GSM-7", 1},
			{9, "12025550142", "+1 202 555 0142", "", "US number", "GSM-7", 1},
		}},
		{name: "encodings", file: "encodings.csv", want: []row{
			{2, "525511110001", "5511110001", "", "Hola Ñandu é ü {braces} € ok", "GSM-7", 1},
			{3, "525511110002", "5511110002", "", "Válido en línea", "UCS-2", 1},
			{4, "525511110003", "5511110003", "", "Emoji 😀", "UCS-2", 1},
		}},
		{name: "placeholders", file: "placeholders.csv", want: []row{
			{2, "525511110001", "5511110001", "600001", "Hola Ana, tienes 120 puntos {Desconocido} {mensaje} 600001", "GSM-7", 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, _ := readRows(t, tc.file, nil)
			if len(rows) != len(tc.want) {
				t.Fatalf("%d rows, want %d: %+v", len(rows), len(tc.want), rows)
			}
			for i, w := range tc.want {
				r := rows[i]
				got := row{r.Line, r.Recipient, r.RecipientRaw, r.MemberID, r.Text, r.Encoding, r.Segments}
				if got != w {
					t.Errorf("row %d = %+v, want %+v", i, got, w)
				}
			}
		})
	}
}

func TestSegmentRows(t *testing.T) {
	rows, _ := readRows(t, "segments.csv", nil)
	want := []int{1, 2, 6, 6}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i, r := range rows {
		if r.Segments != want[i] {
			t.Errorf("row %d (line %d): %d segments, want %d", i, r.Line, r.Segments, want[i])
		}
	}
}

func TestWindows1252Note(t *testing.T) {
	res := checkFixture(t, "windows-1252.csv", nil)
	if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "Windows-1252") {
		t.Errorf("notes = %q", res.Notes)
	}
}

func TestNormalizeRecipient(t *testing.T) {
	for _, tc := range []struct {
		name    string
		allowed []string
		raw     string
		want    string // "" = invalid
	}{
		{name: "national", raw: "5512345678", want: "525512345678"},
		{name: "national with separators", raw: "(55) 1234-5678", want: "525512345678"},
		{name: "dots", raw: "55.1234.5678", want: "525512345678"},
		{name: "52", raw: "525512345678", want: "525512345678"},
		{name: "+52", raw: "+52 55 1234 5678", want: "525512345678"},
		{name: "0052", raw: "0052 55 1234 5678", want: "525512345678"},
		{name: "521", raw: "5215512345678", want: "525512345678"},
		{name: "044", raw: "044 55 1234 5678", want: "525512345678"},
		{name: "045", raw: "045 33 1234 5678", want: "523312345678"},
		{name: "+521 is not a listed form", allowed: []string{"MX"}, raw: "+5215512345678"},
		{name: "00521 is not a listed form", raw: "005215512345678"},
		{name: "+52 landline length", allowed: []string{"MX"}, raw: "+52 55 1234 567"},
		{name: "046 is not a listed form", raw: "0465512345678"},
		{name: "nine digits", raw: "551234567"},
		{name: "eleven digits", raw: "55123456789"},
		{name: "empty", raw: ""},
		{name: "letters", raw: "55 1234 ABCD"},
		{name: "plus in the middle", raw: "55+12345678"},
		{name: "two plus", raw: "++525512345678"},
		{name: "too many digits", raw: "5512345678901234567"},
		{name: "foreign not allowed", raw: "+1 202 555 0142"},
		{name: "foreign allowed", allowed: []string{"US"}, raw: "+1 (202) 555-0142", want: "12025550142"},
		{name: "foreign allowed lower case", allowed: []string{"us"}, raw: "+12025550142", want: "12025550142"},
		{name: "foreign other region", allowed: []string{"US"}, raw: "+44 20 7946 0958"},
		{name: "foreign without plus", allowed: []string{"US"}, raw: "12025550142"},
		{name: "foreign with 00", allowed: []string{"US"}, raw: "0012025550142"},
		{name: "foreign invalid number", allowed: []string{"US"}, raw: "+1 202 555"},
		{name: "uk allowed", allowed: []string{"GB"}, raw: "+44 20 7946 0958", want: "442079460958"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, key, ok := newRecipientRules(tc.allowed).normalize(nil, tc.raw)
			if !ok {
				if tc.want != "" {
					t.Errorf("normalize(%q) invalid, want %s", tc.raw, tc.want)
				}
				return
			}
			if tc.want == "" {
				t.Fatalf("normalize(%q) = %s, want invalid", tc.raw, got)
			}
			if string(got) != tc.want || key != digitsValue([]byte(tc.want)) {
				t.Errorf("normalize(%q) = %s, %d; want %s", tc.raw, got, key, tc.want)
			}
		})
	}
}

func TestHeaderKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Teléfono", "telefono"},
		{"Payback Member ID", "paybackmemberid"},
		{"payback_member-id", "paybackmemberid"},
		{"Nombre Campaña", "nombrecampana"},
		{"FECHA ENVÍO", "fechaenvio"},
		{"Móvil", "movil"},
		{"Send-At", "sendat"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := headerKey(tc.in); got != tc.want {
				t.Errorf("headerKey(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestDetectDelimiter(t *testing.T) {
	for _, tc := range []struct {
		name string
		head string
		want rune
	}{
		{"comma", "phone,message\n1;2;3\n", ','},
		{"semicolon", "phone;message;x\n", ';'},
		{"tab", "phone\tmessage\n", '\t'},
		{"quoted commas ignored", "\"a,b,c\";message\n", ';'},
		{"one column", "phone\n", ','},
		{"no newline", "phone;message", ';'},
	} {
		t.Run(tc.name, func(t *testing.T) {
			br := textReader(strings.NewReader(tc.head), fileScan{UTF8: true})
			if got := detectDelimiter(br); got != tc.want {
				t.Errorf("delimiter %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseDate(t *testing.T) {
	loc := mexico()
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-11-28 10:00", at(2026, 11, 28, 10, 0, 0), true},
		{"2026-11-28 10:00:05", at(2026, 11, 28, 10, 0, 5), true},
		{"2026-11-28T10:00:05", at(2026, 11, 28, 10, 0, 5), true},
		{"2026-11-28T10:00:05Z", time.Date(2026, 11, 28, 10, 0, 5, 0, time.UTC), true},
		{"2026-11-28T10:00:05+01:00", time.Date(2026, 11, 28, 9, 0, 5, 0, time.UTC), true},
		{"28/11/2026 10:00", at(2026, 11, 28, 10, 0, 0), true},
		{"28/11/2026 10:00:05", at(2026, 11, 28, 10, 0, 5), true},
		{"1/12/2026 9:00", at(2026, 12, 1, 9, 0, 0), true},
		{"2026-11-28", at(2026, 11, 28, 0, 0, 0), true},
		{"11/28/2026 10:00", time.Time{}, false},
		{"mañana", time.Time{}, false},
		{"2026-13-01", time.Time{}, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := parseDate(tc.in, loc)
			if ok != tc.ok || !got.Equal(tc.want) {
				t.Errorf("parseDate(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestScanFileUTF8Boundary checks that a character split between two reads
// is still valid UTF-8, and that a truncated one is not.
func TestScanFileUTF8Boundary(t *testing.T) {
	const chunk = 256 << 10
	for _, tc := range []struct {
		name string
		data []byte
		utf8 bool
	}{
		{"split two-byte", append(bytes.Repeat([]byte{'a'}, chunk-1), []byte("ñb")...), true},
		{"split four-byte", append(bytes.Repeat([]byte{'a'}, chunk-2), []byte("😀b")...), true},
		{"truncated at end", append([]byte("abc"), 0xC3), false},
		{"latin-1 byte", []byte("Canj\xe9alos"), false},
		{"ascii", []byte("abc"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, err := scanFile(bytes.NewReader(tc.data), 0)
			if err != nil {
				t.Fatal(err)
			}
			if fs.UTF8 != tc.utf8 || fs.Size != int64(len(tc.data)) {
				t.Errorf("UTF8 = %v, size %d; want %v, %d", fs.UTF8, fs.Size, tc.utf8, len(tc.data))
			}
		})
	}
}

// TestCheckReader checks a plain io.Reader, which Check spools to disk.
func TestCheckReader(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "windows-1252.csv"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := NewIngester(nil, testOptions()).Check(io.MultiReader(bytes.NewReader(data)), "x.csv")
	if err != nil {
		t.Fatal(err)
	}
	if res.Decision != "accepted" || res.Charset != "Windows-1252" || res.Valid != 2 {
		t.Errorf("got %+v", res)
	}
}

// TestDuplicateSetMemory: keeping each number's first line in the
// duplicate set costs no more than the set alone (a uint64 key's slot is
// 16 bytes with a struct{} or a uint32 value): a million numbers stay
// under 48 MB (37.8 MB measured with Go 1.26).
func TestDuplicateSetMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a million-number set")
	}
	const n = 1_000_000
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	set := make(firstLines, n)
	for i := range uint64(n) {
		set[525500000000+i*7919] = uint32(i + 2)
	}
	used := heap() - before
	runtime.KeepAlive(set)
	t.Logf("duplicate set of %d numbers with their lines: %.1f MB", n, float64(used)/1e6)
	if used > 48<<20 {
		t.Errorf("duplicate set of %d numbers takes %d MB", n, used>>20)
	}
}
