package ingest

import (
	"context"
	"encoding/csv"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"campaignd"
)

// dateLayouts are the accepted forms of the date column (SPEC §3), tried in
// order. Day-first dates and hours also accept one digit ("1/12/2026 9:00").
var dateLayouts = []string{
	"2006-01-02 15:04",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
	time.RFC3339,
	"2/1/2006 15:04",
	"2/1/2006 15:04:05",
	"2006-01-02",
	"2006-01-02T15:04",
}

// parseDate parses a date in loc unless it carries an offset.
func parseDate(s string, loc *time.Location) (time.Time, bool) {
	for _, l := range dateLayouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// validation is the outcome of reading a file's rows.
type validation struct {
	Charset  string
	Notes    []string
	Rows     int // data rows (blank rows are not counted)
	Valid    int
	Invalid  int
	Dup      int
	OptedOut int // on the suppression list: skipped, not invalid (optout_ingest.go)
	Segments int64

	HasDate bool
	Date    time.Time
	Name    string // campaign name column, if every row carries one
	Sender  string // sender column, if every row carries one
	// Validity is the validity column's period, if every row carries one
	// (campaignd.ParseValidity); 0: smpp.validity.
	Validity time.Duration

	FileErrors []campaignd.FileError
	RowErrors  int // number of row error lines

	// Truncated describes a cut last line (no line end, or a quoted field
	// open at the end) when the validator was not told to reject it.
	Truncated string
}

// rejected reports whether a file-level error was found.
func (v *validation) rejected() bool { return len(v.FileErrors) > 0 }

// fileError records a file-level error; column, value and message are cut
// to bounded lengths (they may quote the file).
func (v *validation) fileError(line int, column, value, msg string) {
	v.FileErrors = append(v.FileErrors, clipError(campaignd.FileError{Line: line, Column: column, Value: value, Error: msg}))
}

// validator reads the rows of one file, checks every rule of SPEC §3 and
// hands each valid row to emit and each row problem to rowError. It keeps
// no row: memory is bounded by the duplicate set, the numbers seen with the
// line of each (see firstLines).
type validator struct {
	loc         *time.Location
	maxRows     int
	maxSegments int
	recipients  *recipientRules
	sizeHint    int // expected rows (lines of the file), to presize the duplicate set
	maxField    int // bytes of one field; 0: DefaultMaxFieldBytes
	maxRecord   int // bytes of one record; 0: DefaultMaxRecordBytes
	// strictEnd rejects a file whose last line is cut (no line end, or a
	// quoted field still open): an upload completed by STOR.
	strictEnd bool
	now       time.Time // for the date horizon

	emit     func(*campaignd.Row) error // nil: valid rows are only counted
	rowError func(campaignd.FileError) error
	// suppressed reports whether a normalised number opted out; nil: no list.
	suppressed func(number []byte) (bool, error)
}

// oneValue enforces "every row carries the same value, or every row none"
// for the date, campaign name and sender columns.
type oneValue struct {
	col      int
	value    string
	line     int
	seen     bool
	reported bool
}

func (o *oneValue) check(v *validation, h *header, rec []string, line int, same func(a, b string) bool) {
	if o.col < 0 || o.reported {
		return
	}
	val := strings.TrimSpace(rec[o.col])
	if !o.seen {
		o.value, o.line, o.seen = val, line, true
		return
	}
	if val == o.value || (val != "" && o.value != "" && same != nil && same(val, o.value)) {
		return
	}
	o.reported = true
	name := clip(h.names[o.col], maxErrorTextLen)
	first, val := clip(o.value, maxErrorTextLen), clip(val, maxErrorTextLen)
	switch {
	case o.value == "":
		v.fileError(line, name, val, name+" differs between rows: line "+strconv.Itoa(o.line)+" has none, line "+strconv.Itoa(line)+" has \""+val+"\" (every row must carry the same value, or every row none)")
	case val == "":
		v.fileError(line, name, val, name+" differs between rows: line "+strconv.Itoa(o.line)+" has \""+first+"\", line "+strconv.Itoa(line)+" has none (every row must carry the same value, or every row none)")
	default:
		v.fileError(line, name, val, name+" differs between rows: line "+strconv.Itoa(o.line)+" has \""+first+"\", line "+strconv.Itoa(line)+" has \""+val+"\"")
	}
}

// firstLines is the duplicate set: each valid number seen, with the line
// where it first appeared, so that a duplicate names it ("duplicate of line
// 14"). The line costs no memory: a map slot of a uint64 key is 16 bytes
// whether its value is struct{} (padded) or a uint32. Measured with Go
// 1.26: 1,000,000 numbers take 37.8 MB either way, within the ingest bar
// of 256 MB (SPEC §10).
type firstLines map[uint64]uint32

// maxPresize bounds how far the duplicate set is sized from the file's
// line count before any row is read: a file of millions of short or
// invalid lines must not reserve a set it will never fill (about 17 bytes a
// slot); a larger set grows as valid rows come.
const maxPresize = 1 << 20

// run reads the file's text (UTF-8 without BOM) and validates it. It
// returns an error only when reading fails, ctx ends, or emit/rowError fail;
// problems with the file are in the validation.
func (vr *validator) run(ctx context.Context, r io.Reader, delim rune, v *validation) error {
	br := newBoundedReader(r, delim, vr.maxField, vr.maxRecord)
	cr := csv.NewReader(br)
	cr.Comma = delim
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = false
	cr.ReuseRecord = true

	rec, err := cr.Read()
	if errors.Is(err, io.EOF) {
		v.fileError(0, "", "", "no header row: the file holds no text")
		return nil
	} else if err != nil {
		return vr.readError(v, br, err)
	}
	h, msg := parseHeader(rec)
	if msg != "" {
		v.fileError(1, "", "", msg)
		return nil
	}
	if missingColumns(v, h, rec, vr.recipients) {
		return nil
	}
	ncols := len(rec)

	date := oneValue{col: h.known[colDate]}
	name := oneValue{col: h.known[colCampaign]}
	sender := oneValue{col: h.known[colSender]}
	validity := oneValue{col: h.known[colValidity]}
	sameValidity := func(a, b string) bool {
		da, erra := campaignd.ParseValidity(a)
		db, errb := campaignd.ParseValidity(b)
		return erra == nil && errb == nil && da == db
	}
	sameDate := func(a, b string) bool {
		ta, oka := parseDate(a, vr.loc)
		tb, okb := parseDate(b, vr.loc)
		return oka && okb && ta.Equal(tb)
	}

	var (
		seen      = make(firstLines, min(max(vr.sizeHint, 16), vr.maxRows+1, maxPresize))
		numBuf    []byte
		textBuf   []byte
		haveMsg   bool
		lastMsg   string
		lastTmpl  []tmplPart
		lastText  string
		lastEnc   string
		lastUnits int
		lastSegs  int
		row       campaignd.Row
		recipCol  = h.known[colRecipient]
		msgCol    = h.known[colMessage]
		memberCol = h.known[colMemberID]
	)
	rowErrFirst := func(line, col int, value, msg string, first int) error {
		v.RowErrors++
		column := ""
		if col >= 0 {
			column = h.names[col]
		}
		return vr.rowError(clipError(campaignd.FileError{Line: line, Column: column, Value: value, Error: msg, FirstLine: first}))
	}
	rowErr := func(line, col int, value, msg string) error { return rowErrFirst(line, col, value, msg, 0) }
	textLimit := maxTextBytes(vr.maxSegments)

	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return vr.readError(v, br, err)
		}
		line, _ := cr.FieldPos(0)
		if blank(rec) {
			continue
		}
		v.Rows++
		if v.Rows&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if vr.maxRows > 0 && v.Rows > vr.maxRows {
			v.fileError(line, "", "", "more than "+strconv.Itoa(vr.maxRows)+" rows")
			return nil
		}
		if len(rec) != ncols {
			v.Invalid++
			if err := rowErr(line, -1, strconv.Itoa(len(rec))+" fields, the header has "+strconv.Itoa(ncols), campaignd.RowFieldCount); err != nil {
				return err
			}
			continue
		}
		date.check(v, h, rec, line, sameDate)
		name.check(v, h, rec, line, nil)
		sender.check(v, h, rec, line, nil)
		validity.check(v, h, rec, line, sameValidity)

		ok := true
		raw := strings.TrimSpace(rec[recipCol])
		var key uint64
		var good bool
		numBuf, key, good = vr.recipients.normalize(numBuf[:0], raw)
		if !good {
			ok = false
			if err := rowErr(line, recipCol, raw, campaignd.RowInvalidRecipient); err != nil {
				return err
			}
		}

		msg := rec[msgCol]
		if !haveMsg || msg != lastMsg {
			haveMsg, lastMsg = true, msg
			lastTmpl = h.compileTemplate(msg)
		}
		text := lastMsg
		if lastTmpl != nil {
			var fits bool
			var n int64
			textBuf, fits, n = expand(textBuf[:0], lastTmpl, rec, textLimit)
			if !fits {
				v.Invalid++
				detail := "expands to " + strconv.FormatInt(n, 10) + " bytes, more than " + strconv.Itoa(vr.maxSegments) +
					" segments: at most " + strconv.Itoa(vr.maxSegments) + " allowed (" + segmentChars(vr.maxSegments) + ")"
				if err := rowErr(line, msgCol, detail, campaignd.RowTooLong); err != nil {
					return err
				}
				continue
			}
			text = string(textBuf)
		} else {
			text = strings.TrimSpace(text)
		}
		if text == "" {
			ok = false
			if err := rowErr(line, msgCol, "", campaignd.RowEmptyMessage); err != nil {
				return err
			}
		} else {
			if text != lastText || lastEnc == "" {
				lastText = text
				lastEnc, lastUnits, lastSegs = campaignd.AnalyzeText(text)
			}
			if lastSegs > vr.maxSegments {
				ok = false
				detail := strconv.Itoa(lastSegs) + " segments (" + lastEnc + ", " + strconv.Itoa(lastUnits) + " units), at most " + strconv.Itoa(vr.maxSegments) + " allowed (" + segmentChars(vr.maxSegments) + ")"
				if err := rowErr(line, msgCol, detail, campaignd.RowTooLong); err != nil {
					return err
				}
			}
		}
		if !ok {
			v.Invalid++
			continue
		}
		if first, dup := seen[key]; dup {
			v.Dup++
			if err := rowErrFirst(line, recipCol, raw, campaignd.RowDuplicate, int(first)); err != nil {
				return err
			}
			continue
		}
		seen[key] = uint32(min(line, math.MaxUint32))
		if vr.suppressed != nil {
			if out, err := vr.suppressed(numBuf); err != nil {
				return err
			} else if out {
				v.OptedOut++
				if err := rowErr(line, recipCol, raw, campaignd.RowOptedOut); err != nil {
					return err
				}
				continue
			}
		}
		v.Valid++
		v.Segments += int64(lastSegs)
		if vr.emit == nil || v.rejected() {
			continue
		}
		row = campaignd.Row{
			Line:         line,
			Recipient:    string(numBuf),
			RecipientRaw: raw,
			Text:         text,
			Encoding:     lastEnc,
			Segments:     lastSegs,
		}
		if memberCol >= 0 {
			row.MemberID = strings.TrimSpace(rec[memberCol])
		}
		if err := vr.emit(&row); err != nil {
			return err
		}
	}

	if t := br.truncation(); t != "" {
		if vr.strictEnd {
			v.fileError(br.line, "", "", t)
		} else {
			v.Truncated = t
		}
	}
	if v.rejected() {
		return nil
	}
	if date.col >= 0 && date.seen && date.value != "" {
		t, ok := parseDate(date.value, vr.loc)
		if !ok {
			v.fileError(date.line, h.names[date.col], date.value, "unparseable date \""+clip(date.value, maxErrorTextLen)+"\" (use e.g. 31/12/2026 15:04 or 2026-12-31 15:04)")
			return nil
		}
		if err := campaignd.CheckHorizon(vr.now, t); err != nil {
			v.fileError(date.line, h.names[date.col], date.value, "date too far ahead: "+campaignd.ErrorMessage(err)+" A file may be dated at most 366 days ahead; check the year.")
			return nil
		}
		v.HasDate, v.Date = true, t
	}
	if name.col >= 0 {
		v.Name = name.value
	}
	if sender.col >= 0 && sender.value != "" {
		if msg := CheckSender(sender.value); msg != "" {
			v.fileError(sender.line, h.names[sender.col], sender.value, msg)
			return nil
		}
		v.Sender = sender.value
	}
	if validity.col >= 0 && validity.value != "" {
		d, err := campaignd.ParseValidity(validity.value)
		if err != nil {
			v.fileError(validity.line, h.names[validity.col], validity.value,
				"validity \""+clip(validity.value, maxErrorTextLen)+"\" is not a duration from 10 minutes to 15 days (write e.g. 90m, 48h or 2d)")
			return nil
		}
		v.Validity = d
	}
	return nil
}

// readError turns an error of the csv reader into a file-level error: a
// field or record over its cap, a truncated upload, or broken quoting. Any
// other error (reading the file failed) is returned.
func (vr *validator) readError(v *validation, br *boundedReader, err error) error {
	var pe *csv.ParseError
	parse := errors.As(err, &pe)
	switch {
	case br.tooBig != "" && !(parse && pe.StartLine < br.tooBigLine):
		v.fileError(br.tooBigLine, "", "", br.tooBig)
		return nil
	case parse && vr.strictEnd && br.truncation() != "":
		v.fileError(br.line, "", "", br.truncation())
		return nil
	}
	return quotingError(v, err)
}

// missingColumns reports a missing recipient or message column. When the
// first line looks like data, it says the header row is missing instead.
func missingColumns(v *validation, h *header, rec []string, rr *recipientRules) bool {
	if h.known[colRecipient] >= 0 && h.known[colMessage] >= 0 {
		return false
	}
	for _, f := range rec {
		if _, _, ok := rr.normalize(nil, strings.TrimSpace(f)); ok {
			v.fileError(1, "", "", "no header row: line 1 looks like data (the first line must name the columns)")
			return true
		}
	}
	if h.known[colRecipient] < 0 {
		v.fileError(1, "", "", "no recipient column (name one of: recipient, phone, mobile, msisdn, number, telefono, celular, movil)")
	}
	if h.known[colMessage] < 0 {
		v.fileError(1, "", "", "no message column (name one of: message, text, sms, mensaje, texto)")
	}
	return true
}

// quotingError turns a csv.ParseError into a file-level error at its line.
func quotingError(v *validation, err error) error {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return err
	}
	msg := "broken CSV quoting: " + pe.Err.Error()
	if pe.StartLine != pe.Line {
		msg += " (field starts on line " + strconv.Itoa(pe.StartLine) + ", error on line " + strconv.Itoa(pe.Line) + ")"
	}
	v.fileError(pe.StartLine, "", "", msg)
	return nil
}

// blank reports whether every field of rec is empty or spaces, as in the
// trailing ";;;" rows spreadsheets export; such rows are ignored.
func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

func trimBytes(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	for len(b) > 0 {
		c := b[len(b)-1]
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			break
		}
		b = b[:len(b)-1]
	}
	return b
}
