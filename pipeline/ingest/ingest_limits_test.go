package ingest

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/charmap"

	"campaignd"
	"campaignd/internal/testenv"
)

// checkBytes runs Check on data with the test options changed by opts.
func checkBytes(t *testing.T, data []byte, opts func(*Options)) *CheckResult {
	t.Helper()
	o := testOptions()
	if opts != nil {
		opts(&o)
	}
	res, err := NewIngester(nil, o).Check(bytes.NewReader(data), "x.csv")
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return res
}

// fileErr returns the first error line of res with line 0 or the given
// line whose text contains want, or fails.
func findError(t *testing.T, res *CheckResult, line int, want string) campaignd.FileError {
	t.Helper()
	for _, e := range res.Errors {
		if e.Line == line && strings.Contains(e.Error, want) {
			return e
		}
	}
	t.Fatalf("no error %q on line %d in %+v", want, line, res.Errors)
	return campaignd.FileError{}
}

// TestExpansionBounded: a {Header} template is expanded against the
// segment limit, in GSM-7 and UCS-2, with the value at the start, middle or
// end, at the limit and one past it, and a hostile template (a long value
// repeated tens of thousands of times) costs no memory.
func TestExpansionBounded(t *testing.T) {
	gsmMax := 153 * DefaultMaxSegments // 918 septets in 6 segments
	ucsMax := 67 * DefaultMaxSegments  // 402 units
	cases := []struct {
		name, msg, a string
		ok           bool
	}{
		{"gsm at the limit, value at the end", "xx{A}", strings.Repeat("a", gsmMax-2), true},
		{"gsm one past, value at the end", "xx{A}", strings.Repeat("a", gsmMax-1), false},
		{"gsm at the limit, value at the start", "{A}yy", strings.Repeat("b", gsmMax-2), true},
		{"gsm one past, value in the middle", "x{A}yy", strings.Repeat("b", gsmMax-2), false},
		{"gsm é is one septet, two bytes", "{A}", strings.Repeat("é", gsmMax), true},
		{"gsm é one past", "{A}", strings.Repeat("é", gsmMax+1), false},
		// € is two septets, and a part never splits one: 76 in a part.
		{"gsm € is two septets", "{A}", strings.Repeat("€", 76*DefaultMaxSegments), true},
		{"gsm € one past", "{A}€", strings.Repeat("€", 76*DefaultMaxSegments), false},
		{"ucs2 at the limit", "{A}", strings.Repeat("á", ucsMax), true},
		{"ucs2 one past", "{A}", strings.Repeat("á", ucsMax+1), false},
		{"ucs2 three-byte characters at the limit", "{A}", strings.Repeat("☺", ucsMax), true},
		{"ucs2 three-byte characters one past", "{A}", strings.Repeat("☺", ucsMax+1), false},
		{"spaces past the limit are trimmed", "{A}" + strings.Repeat(" ", 5000), strings.Repeat("a", gsmMax), true},
		{"spaces before the text are trimmed", strings.Repeat(" ", 5000) + "{A}", strings.Repeat("a", gsmMax), true},
		{"spaces inside count", "{A}" + strings.Repeat(" ", 5000) + "z", "a", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			w := csv.NewWriter(&b)
			w.Write([]string{"phone", "message", "A"})
			w.Write([]string{"5512345678", tc.msg, tc.a})
			w.Write([]string{"5512345679", "hola", "x"})
			w.Flush()
			res := checkBytes(t, b.Bytes(), nil)
			if tc.ok {
				if res.Invalid != 0 {
					t.Fatalf("row invalid: %+v", res.Errors)
				}
				return
			}
			if res.Invalid != 1 {
				t.Fatalf("invalid = %d, errors %+v", res.Invalid, res.Errors)
			}
			e := findError(t, res, 2, campaignd.RowTooLong)
			if !strings.Contains(e.Value, "at most 6 allowed") || !strings.Contains(e.Value, "segments") {
				t.Errorf("error value %q says neither the length nor the limit", e.Value)
			}
		})
	}

	t.Run("a long value repeated thousands of times", func(t *testing.T) {
		for _, tc := range []struct {
			name, unit string
			repeat     int
			caps       func(*Options)
		}{
			{"gsm7 within the default caps", "A", 21_000, nil},
			{"ucs2 within the default caps", "á", 21_000, nil},
			{"gsm7 60,000 times, caps raised", "A", 60_000, func(o *Options) { o.MaxFieldBytes, o.MaxRecordBytes = 1<<20, 1<<20 }},
		} {
			enc := tc
			val := strings.Repeat(enc.unit, 60_000/len(enc.unit))
			msg := strings.Repeat("{A}", tc.repeat)
			data := []byte("phone,message,A\n5512345678," + msg + "," + val + "\n5512345679,hola,x\n")
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			res := checkBytes(t, data, tc.caps)
			runtime.ReadMemStats(&after)
			e := findError(t, res, 2, campaignd.RowTooLong)
			want := "expands to " + strconv.Itoa(tc.repeat*len(val)) + " bytes"
			if !strings.Contains(e.Value, want) {
				t.Errorf("%s: value %q, want it to say %q", enc.name, e.Value, want)
			}
			// The expansion would be 3.6 GB; Check reads the 180 KB file
			// twice and holds one record.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
				t.Errorf("%s: %d MB allocated", enc.name, alloc>>20)
			}
		}
	})
}

// refExpand is the unbounded expansion: every part, then the trim.
func refExpand(parts []tmplPart, rec []string) []byte {
	var dst []byte
	for _, p := range parts {
		if p.col < 0 {
			dst = append(dst, p.lit...)
		} else {
			dst = append(dst, strings.TrimSpace(rec[p.col])...)
		}
	}
	return trimBytes(dst)
}

// FuzzExpand checks the bounded expansion against the unbounded one: the
// same text when it fits the limit, a text certainly longer when it does
// not, and the full length computed either way.
func FuzzExpand(f *testing.F) {
	f.Add("Hola {A}, tienes {B} puntos", "Ana", "120", 40)
	f.Add("{A}{A}{A}{A}", "  x  ", "", 3)
	f.Add("  {B} ", "", "  ", 1)
	f.Add("{A} {B}", "ñandú", "€€", 10)
	f.Add("{A}"+strings.Repeat(" ", 100), "abc", "", 3)
	f.Fuzz(func(t *testing.T, msg, a, b string, limit int) {
		if limit < 0 || limit > 4096 {
			return
		}
		h, _ := parseHeader([]string{"phone", "message", "A", "B"})
		parts := h.compileTemplate(msg)
		if parts == nil {
			return
		}
		rec := []string{"5512345678", msg, a, b}
		want := refExpand(parts, rec)
		got, fits, n := expand([]byte("prefix"), parts, rec, limit)
		if !bytes.HasPrefix(got, []byte("prefix")) {
			t.Fatalf("dst prefix lost: %q", got)
		}
		got = got[len("prefix"):]
		var full int64
		for _, p := range parts {
			if p.col < 0 {
				full += int64(len(p.lit))
			} else {
				full += int64(len(strings.TrimSpace(rec[p.col])))
			}
		}
		if n != full {
			t.Errorf("n = %d, want %d", n, full)
		}
		if fits {
			if !bytes.Equal(got, want) {
				t.Errorf("expand = %q, want %q", got, want)
			}
			if len(got) > limit {
				t.Errorf("%d bytes held, limit %d", len(got), limit)
			}
		} else if len(want) <= limit {
			t.Errorf("does not fit, but the text is %d bytes, limit %d", len(want), limit)
		}
	})
}

// TestMaxTextBytes: every text within the segment limit is within the
// byte bound expansion stops at, for the widest characters of each
// encoding.
func TestMaxTextBytes(t *testing.T) {
	for segs := 1; segs <= 10; segs++ {
		for _, unit := range []string{"a", "é", "€", "á", "☺", "😀"} {
			n := 0
			text := ""
			for {
				next := text + unit
				if _, _, s := campaignd.AnalyzeText(next); s > segs {
					break
				}
				text, n = next, n+1
			}
			if len(text) > maxTextBytes(segs) {
				t.Errorf("%d segments of %q: %d bytes, bound %d", segs, unit, len(text), maxTextBytes(segs))
			}
		}
	}
}

// TestRecordCap: a field over the field cap or a record over the record
// cap rejects the file with the line where the record starts, whatever the
// position (header, first row, last row), the quoting, the line ends and
// the encoding; at the cap the file is read.
func TestRecordCap(t *testing.T) {
	const field, record = 1000, 4000
	opts := func(o *Options) { o.MaxFieldBytes, o.MaxRecordBytes = field, record }
	rows := func(n int) string {
		var sb strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&sb, "55%08d,hola\n", i)
		}
		return sb.String()
	}
	cases := []struct {
		name string
		data string
		line int    // 0: accepted
		want string // in the error
	}{
		{"field at the cap", "phone,message\n5512345678," + strings.Repeat("a", field) + "\n" + rows(3), 0, ""},
		{"field one past the cap", "phone,message\n5512345678," + strings.Repeat("a", field+1) + "\n" + rows(3), 2, "longer than 1000 bytes"},
		{"long header name", "phone,message," + strings.Repeat("h", field+1) + "\n" + rows(3), 1, "longer than 1000 bytes"},
		{"long field in the last row", "phone,message\n" + rows(5) + "5512345678," + strings.Repeat("a", 5000) + "\n", 7, "limit for one field"},
		{"long last line without a line end", "phone,message\n" + rows(5) + "5512345678," + strings.Repeat("a", 5000), 7, "limit for one field"},
		{"quoted field spanning lines", "phone,message\n" + rows(2) + "5512345678,\"" + strings.Repeat("a\n", 600) + "\"\n" + rows(2), 4, "limit for one field"},
		{"quoted field with escaped quotes and delimiters", "phone,message\n5512345678,\"" + strings.Repeat("a,\"\";", 300) + "\"\n" + rows(2), 2, "limit for one field"},
		{"record of many small fields", "phone,message,c1,c2,c3,c4,c5\n" + rows(1) +
			"5512345678,hola" + strings.Repeat(","+strings.Repeat("v", 900), 5) + "\n", 3, "limit for one record"},
		{"crlf line ends", strings.ReplaceAll("phone,message\n"+rows(3)+"5512345678,"+strings.Repeat("a", field+1)+"\n", "\n", "\r\n"), 5, "limit for one field"},
		{"semicolon delimiter", "phone;message\n5512345678;" + strings.Repeat("a", field+1) + "\n", 2, "limit for one field"},
		{"one huge line", strings.Repeat("x", 200_000), 1, "longer than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := checkBytes(t, []byte(tc.data), opts)
			if tc.line == 0 {
				for _, e := range res.Errors {
					if strings.Contains(e.Error, "longer than") {
						t.Fatalf("rejected at the cap: %+v", e)
					}
				}
				return
			}
			if res.Decision != campaignd.UploadRejected {
				t.Fatalf("decision %s, errors %+v", res.Decision, res.Errors)
			}
			findError(t, res, tc.line, tc.want)
		})
	}
	t.Run("windows-1252 grows when decoded", func(t *testing.T) {
		// 600 'é' are 600 bytes in Windows-1252 but 1200 in UTF-8: the cap
		// is on the text as read.
		val, _ := charmap.Windows1252.NewEncoder().String(strings.Repeat("é", 600))
		res := checkBytes(t, []byte("phone,message\n5512345678,"+val+"\n"), opts)
		findError(t, res, 2, "limit for one field")
	})
}

// FuzzRecordCap: whatever the bytes, a record that encoding/csv returns
// through the bounded reader never holds a field or a record over the
// caps, and a cap error names a line of the file.
func FuzzRecordCap(f *testing.F) {
	f.Add([]byte("a,b\n1,2\n"), 4, 16)
	f.Add([]byte("a,\"b\nc\",d\n\"\"\"x\"\n"), 3, 10)
	f.Add([]byte(strings.Repeat("x", 100)), 8, 32)
	f.Add([]byte("\"open,quote\nand more\n"), 5, 12)
	f.Fuzz(func(t *testing.T, data []byte, maxField, maxRecord int) {
		if maxField < 1 || maxField > 512 || maxRecord < maxField || maxRecord > 2048 {
			return
		}
		// The reader finds a cap exactly where a byte-at-a-time count does.
		drain := newBoundedReader(bytes.NewReader(data), ',', maxField, maxRecord)
		io.Copy(io.Discard, io.LimitReader(drain, int64(len(data))+1))
		if hit, line := refCap(data, ',', maxField, maxRecord); hit != (drain.tooBig != "") || hit && line != drain.tooBigLine {
			t.Fatalf("reference: cap hit %v on line %d; reader: %q on line %d", hit, line, drain.tooBig, drain.tooBigLine)
		}

		br := newBoundedReader(bytes.NewReader(data), ',', maxField, maxRecord)
		cr := csv.NewReader(br)
		cr.FieldsPerRecord = -1
		for {
			rec, err := cr.Read()
			if err != nil {
				if br.tooBig != "" && (br.tooBigLine < 1 || br.tooBigLine > bytes.Count(data, []byte{'\n'})+1) {
					t.Fatalf("cap error on line %d of a %d-line file", br.tooBigLine, bytes.Count(data, []byte{'\n'})+1)
				}
				return
			}
			total := 0
			for _, fld := range rec {
				if len(fld) > maxField {
					t.Fatalf("field of %d bytes, cap %d", len(fld), maxField)
				}
				total += len(fld)
			}
			if total > maxRecord {
				t.Fatalf("record of %d bytes, cap %d", total, maxRecord)
			}
		}
	})
}

// refCap is the record cap counted one byte at a time: whether a field
// (its bytes, quotes included) or a record (its bytes and delimiters, not
// its line end) of data passes its cap, and the line where that record
// starts.
func refCap(data []byte, delim byte, maxField, maxRecord int) (bool, int) {
	line, start, field, record, quoted := 1, 1, 0, 0, false
	for _, c := range data {
		switch {
		case c == '\n' && !quoted:
			line++
			field, record, start = 0, 0, line
			continue
		case c == delim && !quoted:
			field = 0
			record++
		default:
			if c == '"' {
				quoted = !quoted
			}
			if c == '\n' {
				line++
			}
			field++
			record++
		}
		if field > maxField || record > maxRecord {
			return true, start
		}
	}
	return false, 0
}

// TestErrorOutputBounded: a 64 KB header name (matching after '_' is
// stripped) and thousands of bad rows make a bounded errors file (column
// and value cut, a cap on lines, a last "and N more" line) and a small
// upload record with the exact count.
func TestErrorOutputBounded(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bad     int
		maxRows int
	}{
		{"under the cap", 40, 100},
		{"at the cap", 100, 100},
		{"over the cap", 5000, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, root := testenv.OpenStoreOnDisk(t), jailDir(t)
			var sb strings.Builder
			phone := "tele" + strings.Repeat("_", 60_000) + "fono"
			sb.WriteString(phone + ",message\n")
			for i := 0; i < tc.bad; i++ {
				fmt.Fprintf(&sb, "=cmd|'/C calc'!A0%s,hola\n", strings.Repeat("9", 5000))
			}
			o := testOptions()
			o.MaxErrorRows = tc.maxRows
			job := upload(t, db, root, "x.csv", []byte(sb.String()))
			if b, err := newIngester(t, db, root, o).Run(context.Background(), job); err != nil || b != nil {
				t.Fatalf("Run = %v, %v", b, err)
			}
			data, err := os.ReadFile(filepath.Join(root, "rejected", "x.csv.errors.csv"))
			if err != nil {
				t.Fatal(err)
			}
			recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			listed := min(tc.bad, tc.maxRows)
			want := 1 + 1 + listed // header, the file-level error, the rows
			if tc.bad > tc.maxRows {
				want++
				last := recs[len(recs)-1]
				if !strings.Contains(last[3], fmt.Sprintf("and %d more", tc.bad-tc.maxRows)) || !strings.Contains(last[3], fmt.Sprintf("%d in all", tc.bad)) {
					t.Errorf("last line %q", last)
				}
			}
			if len(recs) != want {
				t.Fatalf("%d lines, want %d", len(recs), want)
			}
			for _, r := range recs[2 : 2+listed] {
				if len(r[1]) > 4*maxErrorTextLen+3 || len(r[2]) > 4*maxErrorTextLen+3 {
					t.Fatalf("column %d bytes, value %d bytes", len(r[1]), len(r[2]))
				}
				if !strings.HasSuffix(r[1], "…") || !strings.HasPrefix(r[2], "'=cmd") {
					t.Fatalf("line %q: column not cut or value not neutralised", r[:3])
				}
			}
			// Per line: the cut column and value, and the reason (the
			// longest explanation is under 200 bytes).
			if len(data) > 2000+listed*(2*maxErrorTextLen+300) {
				t.Errorf("errors file is %d bytes", len(data))
			}
			u, err := db.Upload(job.Upload.ID)
			if err != nil {
				t.Fatal(err)
			}
			js, _ := json.Marshal(u)
			if u.ErrorCount != tc.bad || len(u.Errors) > maxStoredRowErrors+3 || len(js) > 64<<10 {
				t.Errorf("upload record: error count %d, %d errors kept, %d bytes", u.ErrorCount, len(u.Errors), len(js))
			}
		})
	}
}

// TestDateHorizon: a file dated more than MaxScheduleAhead after now is
// rejected with a clear error, in every accepted date form; within it, it is
// scheduled.
func TestDateHorizon(t *testing.T) {
	for _, tc := range []struct {
		name, date string
		ok         bool
	}{
		{"year 9999", "9999-12-31 23:59", false},
		{"year 9999 day first", "31/12/9999 23:59", false},
		{"rfc3339 far", "2030-01-01T00:00:00Z", false},
		{"date only just past", testNow.Add(campaignd.MaxScheduleAhead + 48*time.Hour).Format("2006-01-02"), false},
		{"a year ahead", testNow.Add(365 * 24 * time.Hour).Format("2006-01-02 15:04"), true},
		{"tomorrow", testNow.Add(24 * time.Hour).Format("02/01/2006 15:04"), true},
		{"long past", "2001-01-01 10:00", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := "phone,message,fecha\n5512345678,hola," + tc.date + "\n5512345679,hola," + tc.date + "\n"
			res := checkBytes(t, []byte(data), nil)
			if tc.ok {
				if res.Decision != campaignd.UploadAccepted {
					t.Fatalf("rejected: %+v", res.Errors)
				}
				return
			}
			if res.Decision != campaignd.UploadRejected {
				t.Fatalf("accepted, scheduled at %v", res.ScheduledAt)
			}
			e := findError(t, res, 2, "more than a year ahead")
			if e.Column != "fecha" || e.Value != tc.date {
				t.Errorf("error %+v", e)
			}
		})
	}
}

// TestSender: the sender column must be a numeric short code (at most 15
// digits) or at most 11 GSM-7 characters; the default sender follows the
// same rule (config).
func TestSender(t *testing.T) {
	for _, tc := range []struct {
		sender string
		ok     bool
		why    string
	}{
		{"28776", true, ""},
		{"123456789012345", true, ""},
		{"1234567890123456", false, "digits"},
		{"PAYBACK", true, ""},
		{"Payback MX", true, ""},
		{"PaybackMX01", true, ""},
		{"PaybackMX012", false, "12 GSM-7 characters"},
		{"Payback€€", true, ""}, // € is 2 septets: 7 + 4 = 11
		{"Payback€€x", false, "12 GSM-7 characters"},
		{"Pañuelo", true, ""},
		{"Canción", false, "outside GSM-7"},
		{strings.Repeat("S", 40), false, "40 GSM-7 characters"},
		{"=1+1", true, ""}, // valid; neutralised in the report
		{"Pay\tback", false, "control character"},
	} {
		t.Run(tc.sender, func(t *testing.T) {
			msg := CheckSender(tc.sender)
			if (msg == "") != tc.ok || !strings.Contains(msg, tc.why) {
				t.Fatalf("CheckSender(%q) = %q", tc.sender, msg)
			}
			var b bytes.Buffer
			w := csv.NewWriter(&b)
			w.Write([]string{"phone", "message", "remitente"})
			w.Write([]string{"5512345678", "hola", tc.sender})
			w.Write([]string{"5512345679", "hola", tc.sender})
			w.Flush()
			res := checkBytes(t, b.Bytes(), nil)
			if tc.ok {
				if res.Decision != campaignd.UploadAccepted || res.Sender != tc.sender {
					t.Fatalf("decision %s, sender %q, errors %+v", res.Decision, res.Sender, res.Errors)
				}
				return
			}
			e := findError(t, res, 2, "sender")
			if e.Column != "remitente" || !strings.Contains(e.Error, "at most") {
				t.Errorf("error %+v", e)
			}
		})
	}
}

// BenchmarkBoundedReader measures the cost of following the CSV structure
// while reading (the record cap), in bytes per second.
func BenchmarkBoundedReader(b *testing.B) {
	var sb strings.Builder
	for i := 0; sb.Len() < 8<<20; i++ {
		fmt.Fprintf(&sb, "55%08d,\"Hola Socio%d, tienes %d puntos Payback. Canjealos antes del domingo.\",60%08d,Puntos Noviembre\n", i, i, i%5000, i)
	}
	data := []byte(sb.String())
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		br := newBoundedReader(bytes.NewReader(data), ',', 0, 0)
		for {
			if _, err := br.Read(buf); err != nil {
				break
			}
		}
	}
}

// TestClip: values quoted in errors are cut at a character count, never
// inside a UTF-8 sequence, marked with "…".
func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"", 3, ""},
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…"},
		{"ñañaña", 3, "ñañ…"},
		{"ñañ", 3, "ñañ"},
		{"😀😀😀😀", 2, "😀😀…"},
		{"a\xffb\xfec", 2, "a\xff…"},
	} {
		if got := clip(tc.in, tc.n); got != tc.want {
			t.Errorf("clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
	long := "tele" + strings.Repeat("_", 60_000) + "fono"
	res := checkBytes(t, []byte(long+",phone,message\n5512345678,b,hola\n"), nil)
	if len(res.Errors) != 1 || len(res.Errors[0].Error) > 600 || !strings.Contains(res.Errors[0].Error, "both the recipient column") {
		t.Errorf("errors %.300s", fmt.Sprint(res.Errors))
	}
}
