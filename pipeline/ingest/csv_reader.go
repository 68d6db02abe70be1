package ingest

import (
	"errors"
	"io"
	"strconv"
)

// Defaults of the record-size caps (SPEC §3, "Limits that keep a file from
// hurting the service").
const (
	DefaultMaxFieldBytes  = 64 << 10
	DefaultMaxRecordBytes = 1 << 20
)

// errRecordTooBig is returned by a boundedReader once a field or a record
// passes its cap; the reader's tooBig says which, and where.
var errRecordTooBig = errors.New("record too big")

// boundedReader sits between the file's text and encoding/csv. It follows
// the CSV structure (quotes, delimiters, line ends) as the bytes go by, so
// that a field over maxField bytes or a record over maxRecord bytes stops
// the read before encoding/csv buffers it: the csv reader holds at most one
// record, and a record is at most maxRecord bytes. It also notes how the
// text ends, for the truncated-upload check.
//
// Quote state is a toggle on every '"': in well-formed CSV an escaped quote
// ("") toggles twice, so at a delimiter or a line end the state is exact.
// In a malformed file the state may be wrong, but encoding/csv rejects such
// a file anyway; the caps still hold, as every byte is counted.
type boundedReader struct {
	r         io.Reader
	special   [256]bool // '"', '\n' and the delimiter
	maxField  int
	maxRecord int

	line       int // current line, 1-based
	recStart   int // line where the current record starts
	fieldBytes int
	recBytes   int
	inQuote    bool
	quoteLine  int  // line of the quote that opened the current quoted field
	last       byte // last byte read
	eof        bool
	err        error

	tooBig     string // description of the cap that was hit
	tooBigLine int
}

func newBoundedReader(r io.Reader, delim rune, maxField, maxRecord int) *boundedReader {
	if maxField <= 0 {
		maxField = DefaultMaxFieldBytes
	}
	if maxRecord <= 0 {
		maxRecord = DefaultMaxRecordBytes
	}
	b := &boundedReader{r: r, maxField: maxField, maxRecord: maxRecord, line: 1, recStart: 1}
	b.special['"'], b.special['\n'], b.special[byte(delim)] = true, true, true
	return b
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	for i := 0; i < n; {
		// Ordinary bytes in bulk, then one quote, delimiter or line end.
		j := i
		for j < n && !b.special[p[j]] {
			j++
		}
		b.fieldBytes += j - i
		b.recBytes += j - i
		if b.fieldBytes > b.maxField || b.recBytes > b.maxRecord {
			// Checked before a delimiter or line end resets the counts.
			b.capHit()
			return i, b.err
		}
		if j < n {
			b.fieldBytes++
			b.recBytes++
			switch p[j] {
			case '"':
				b.inQuote = !b.inQuote
				if b.inQuote {
					b.quoteLine = b.line
				}
			case '\n':
				b.line++
				if !b.inQuote {
					b.fieldBytes, b.recBytes, b.recStart = 0, 0, b.line
				}
			default: // the delimiter
				if !b.inQuote {
					b.fieldBytes = 0
				}
			}
			j++
		}
		if b.fieldBytes > b.maxField || b.recBytes > b.maxRecord {
			// What came before this run is within the caps; stop there.
			b.capHit()
			return i, b.err
		}
		i = j
	}
	if n > 0 {
		b.last = p[n-1]
	}
	if errors.Is(err, io.EOF) {
		b.eof = true
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// capHit records which cap the current record passed.
func (b *boundedReader) capHit() {
	if b.fieldBytes > b.maxField {
		b.tooBig = "a field of the record starting on line " + strconv.Itoa(b.recStart) +
			" is longer than " + strconv.Itoa(b.maxField) + " bytes (the limit for one field)"
	} else {
		b.tooBig = "the record starting on line " + strconv.Itoa(b.recStart) +
			" is longer than " + strconv.Itoa(b.maxRecord) + " bytes (the limit for one record)"
	}
	b.tooBigLine = b.recStart
	b.err = errRecordTooBig
}

// truncation describes how the text ends when its last line is cut (no
// line end, or a quoted field still open), or returns "" when it ends
// cleanly or was not read to the end. An empty text is not cut.
func (b *boundedReader) truncation() string {
	switch {
	case !b.eof || b.last == 0:
		return ""
	case b.inQuote:
		return "truncated upload: a quoted field opened on line " + strconv.Itoa(b.quoteLine) +
			" is still open at the end of the file (the transfer may have been cut; upload the whole file again)"
	case b.last != '\n':
		return "truncated upload: the last line (" + strconv.Itoa(b.line) +
			") has no line end (the transfer may have been cut; upload the whole file again, ending with a line break)"
	}
	return ""
}
