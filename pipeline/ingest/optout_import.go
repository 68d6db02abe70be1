package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"time"

	"campaignd"
)

// suppressImportBatch is how many numbers are written per store call.
const suppressImportBatch = 5000

// SuppressionStore is what a suppression import needs from the ingest
// store (*store.DB has it).
type SuppressionStore interface {
	SuppressMany(ss []campaignd.Suppression) (added int, err error)
	Audit(e campaignd.AuditEntry) error
}

// IsSuppressionUpload reports whether u was dropped into suppressions/.
func IsSuppressionUpload(u *campaignd.Upload) bool {
	p := strings.TrimPrefix(path.Clean("/"+u.Path), "/")
	dir, _, ok := strings.Cut(p, "/")
	return ok && strings.EqualFold(dir, campaignd.SuppressionsDir)
}

// ImportResult is what a suppression import did.
type ImportResult struct {
	Lines   int // data lines (the header and blank lines not counted)
	Valid   int // numbers read (duplicates within the file counted once, among its first maxListSeen numbers)
	Added   int // numbers new to the list
	Invalid int
}

// importSuppressions runs the job of a list dropped into suppressions/: every
// valid number of the file goes on the suppression list (reason "import",
// source the file), bad lines go to the errors file, and the file moves to
// processed/ (or rejected/ when nothing in it could be read) like any
// upload. Re-running it after a crash adds nothing twice.
func (in *Ingester) importSuppressions(ctx context.Context, u *campaignd.Upload, log *slog.Logger, start time.Time) error {
	ss, ok := in.db.(SuppressionStore)
	if !ok {
		return errors.New("the store keeps no suppression list")
	}
	f, err := in.o.Inbox.Open(u)
	if err != nil {
		return err
	}
	defer f.Close()
	errs := &errorSink{words: campaignd.RowErrorWords(in.o.Language)}
	defer errs.close()
	v := &validation{}
	res, err := in.readSuppressions(ctx, f, u, ss, v, errs)
	if err != nil {
		return err
	}
	u.FinishedAt = in.o.Now()
	u.Errors = append(v.FileErrors, errs.first...)
	u.ErrorCount = errs.n
	u.Imported = res.Added
	dir, outcome := campaignd.ProcessedDir, campaignd.UploadAccepted
	if v.rejected() {
		dir, outcome = campaignd.RejectedDir, campaignd.UploadRejected
	}
	// The outcome is set only after the move: placing saves the upload,
	// and a rerun takes a saved outcome for a finished job.
	if err := in.place(u, dir, v.FileErrors, errs); err != nil {
		return err
	}
	u.Outcome = outcome
	// Finishes the job: the outcome is saved and the job removed.
	if err := in.db.RejectUpload(u); err != nil {
		return err
	}
	detail := fmt.Sprintf("%s: %d numbers added, %d already listed, %d invalid lines", u.Path, res.Added, res.Valid-res.Added, res.Invalid)
	if v.rejected() {
		detail = fmt.Sprintf("%s rejected: %s", u.Path, v.FileErrors[0].Error)
	}
	if err := ss.Audit(campaignd.AuditEntry{User: "ftp:" + u.User, RemoteAddr: u.RemoteAddr, Action: "import", Detail: detail}); err != nil {
		log.Error("audit suppression import", slog.Any(ingestKeyError, err))
	}
	in.o.Events.IngestDone(u.Outcome, time.Since(start))
	log.Info("suppression list imported", slog.String(ingestKeyResult, u.Outcome), slog.Int("added", res.Added),
		slog.Int("valid", res.Valid), slog.Int(ResultInvalid, res.Invalid), slog.Duration(ingestKeyDuration, time.Since(start)))
	return nil
}

// readSuppressions reads a list: one number a line, or a CSV whose number
// column is named like the recipient column of an upload (else its first
// column); a header line is optional. Valid numbers are added in batches
// as they are read; file-level problems go to v, bad lines to errs.
func (in *Ingester) readSuppressions(ctx context.Context, f io.ReadSeeker, u *campaignd.Upload, ss SuppressionStore, v *validation, errs *errorSink) (ImportResult, error) {
	var res ImportResult
	scan, err := scanFile(f, in.o.MaxUploadBytes)
	if err != nil {
		return res, err
	}
	u.Size, u.SHA256 = scan.Size, scan.SHA256
	switch {
	case scan.TooBig:
		v.fileError(0, "", "", fmt.Sprintf("the file is over the size limit of %d bytes", in.o.MaxUploadBytes))
	case scan.Size == 0:
		v.fileError(0, "", "", "empty file")
	case scan.NULLine > 0:
		v.fileError(scan.NULLine, "", "", "not a text file (NUL bytes found); save it as CSV or text, one number a line")
	}
	if v.rejected() {
		return res, nil
	}
	if u.Via == campaignd.ViaSTOR || u.Via == "" {
		// A cut last line could still read as another valid number.
		if cut, err := lastLineCut(f, scan.Size); err != nil {
			return res, err
		} else if cut {
			v.fileError(scan.Lines+1, "", "", "truncated upload: the last line has no line end; upload the whole file again")
			return res, nil
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return res, err
	}
	now := in.o.Now()
	rules := newRecipientRules(in.o.AllowedCountries)
	lr := newListReader(textReader(f, scan), rules, scan.Lines, in.o.MaxFieldBytes, in.o.MaxRecordBytes, func(number string) campaignd.Suppression {
		return campaignd.Suppression{Number: number, Reason: campaignd.SuppressImport, Source: u.Path, At: now, By: "ftp:" + u.User}
	})
	if res, err = lr.run(ctx, ss, v, errs.add); err != nil {
		return res, err
	}
	if v.rejected() {
		return res, nil
	}
	if res.Valid == 0 {
		if res.Lines == 0 {
			v.fileError(0, "", "", "no numbers: the file holds no data lines")
		} else {
			v.fileError(0, "", "", fmt.Sprintf("no valid number: all %d lines are invalid", res.Lines))
		}
	}
	return res, nil
}

// listReader reads a list of numbers — one a line, or a CSV whose number
// column is named like an upload's recipient column (else the first); a
// header line is optional — and suppresses every valid number, in batches,
// as it goes. Duplicates within the list count once.
type listReader struct {
	cr    *csv.Reader
	br    *boundedReader // the caps of an upload: a field or a record too long is a file error
	rules *recipientRules
	seen  map[uint64]struct{}
	entry func(number string) campaignd.Suppression
}

func newListReader(r io.Reader, rules *recipientRules, sizeHint, maxField, maxRecord int, entry func(string) campaignd.Suppression) *listReader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	if b, _ := br.Peek(len(utf8BOM)); bytes.Equal(b, utf8BOM) {
		br.Discard(len(utf8BOM)) // a list from the console or the API, saved by Excel
	}
	delim := detectDelimiter(br)
	bounded := newBoundedReader(br, delim, maxField, maxRecord)
	cr := csv.NewReader(bounded)
	cr.Comma = delim
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true // a list of numbers has no use for quotes; never fail on one
	cr.ReuseRecord = true
	return &listReader{cr: cr, br: bounded, rules: rules, seen: make(map[uint64]struct{}, min(max(sizeHint, 16), 1<<20)), entry: entry}
}

// run reads the whole list; an unreadable line is a file error in v, an
// invalid number a row error for bad.
func (lr *listReader) run(ctx context.Context, ss SuppressionStore, v *validation, bad func(campaignd.FileError) error) (ImportResult, error) {
	var res ImportResult
	batch := make([]campaignd.Suppression, 0, suppressImportBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := ss.SuppressMany(batch)
		res.Added += n
		batch = batch[:0]
		return err
	}
	col, first := 0, true
	var numBuf []byte
	for {
		rec, err := lr.cr.Read()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			if lr.br.tooBig != "" {
				v.fileError(lr.br.tooBigLine, "", "", lr.br.tooBig)
				return res, flush()
			}
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				v.fileError(pe.StartLine, "", "", "unreadable line: "+pe.Err.Error())
				return res, flush()
			}
			return res, err
		}
		line, _ := lr.cr.FieldPos(0)
		if blank(rec) {
			continue
		}
		if first {
			first = false
			if c, isHeader := listHeader(rec, lr.rules); isHeader {
				col = c
				continue
			}
		}
		res.Lines++
		if res.Lines&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return res, err
			}
		}
		raw := ""
		if col < len(rec) {
			raw = strings.TrimSpace(rec[col])
		}
		var key uint64
		var ok bool
		numBuf, key, ok = lr.rules.normalize(numBuf[:0], raw)
		if !ok {
			res.Invalid++
			if err := bad(clipError(campaignd.FileError{Line: line, Column: "number", Value: raw, Error: campaignd.RowInvalidRecipient})); err != nil {
				return res, err
			}
			continue
		}
		if _, dup := lr.seen[key]; dup {
			continue
		}
		if len(lr.seen) < maxListSeen {
			lr.seen[key] = struct{}{}
		}
		res.Valid++
		batch = append(batch, lr.entry(string(numBuf)))
		if len(batch) == suppressImportBatch {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	return res, flush()
}

// maxListSeen bounds the numbers a list remembers to count its duplicates
// once (about 40 MB): a list may hold up to max_upload_bytes of numbers,
// 90 million in 1 GB. Past it a repeated number counts as valid again; the
// store adds it once all the same.
var maxListSeen = 1 << 20

// ImportList reads a list of numbers sent from the console or the API (see
// listReader) and suppresses every valid one with the reason, source and
// author of entry. It returns what it did and the first invalid lines; a
// list without a valid number is an EINVALID error.
func ImportList(ctx context.Context, r io.Reader, countries []string, ss SuppressionStore, entry campaignd.Suppression) (ImportResult, []campaignd.FileError, error) {
	var bad []campaignd.FileError
	v := &validation{}
	lr := newListReader(r, newRecipientRules(countries), 0, 0, 0, func(n string) campaignd.Suppression {
		s := entry
		s.Number = n
		return s
	})
	res, err := lr.run(ctx, ss, v, func(e campaignd.FileError) error {
		if len(bad) < maxStoredRowErrors {
			bad = append(bad, e)
		}
		return nil
	})
	if err != nil {
		return res, bad, err
	}
	if v.rejected() {
		e := v.FileErrors[0]
		return res, bad, campaignd.Errorf(campaignd.EINVALID, "Line %d: %s.", e.Line, e.Error)
	}
	if res.Valid == 0 {
		if len(bad) > 0 {
			return res, bad, campaignd.Errorf(campaignd.EINVALID, "No valid number: line %d has %q (%s).", bad[0].Line, bad[0].Value, bad[0].Error)
		}
		return res, bad, campaignd.Errorf(campaignd.EINVALID, "No numbers: the list is empty.")
	}
	return res, bad, nil
}

// listHeader reports whether the first record of a list is a header: no
// field is a valid number and one has a letter. The number column is the
// one named like an upload's recipient column, else the first.
func listHeader(rec []string, rules *recipientRules) (col int, ok bool) {
	letter := false
	for _, f := range rec {
		if _, _, valid := rules.normalize(nil, strings.TrimSpace(f)); valid {
			return 0, false
		}
		if strings.IndexFunc(f, func(r rune) bool { return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' }) >= 0 {
			letter = true
		}
	}
	if !letter {
		return 0, false
	}
	for i, f := range rec {
		k := headerKey(strings.TrimSpace(strings.TrimPrefix(f, "\uFEFF")))
		if c, ok := headerAliases[k]; (ok && c == colRecipient) || listNumberNames[k] {
			return i, true
		}
	}
	return 0, true
}

// listNumberNames are further names of a list's number column (folded as
// headerKey does), besides an upload's recipient names.
var listNumberNames = map[string]bool{"numero": true, "numeros": true, "telefonos": true, "tel": true,
	"celulares": true, "numerotelefono": true, "numerocelular": true, "phonenumber": true}

// lastLineCut reports whether a non-empty file's last byte is not a line end.
func lastLineCut(f io.ReadSeeker, size int64) (bool, error) {
	if size == 0 {
		return false, nil
	}
	var b [1]byte
	if _, err := f.Seek(size-1, io.SeekStart); err != nil {
		return false, err
	}
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return false, err
	}
	return b[0] != '\n' && b[0] != '\r', nil
}

// NumberRules normalises numbers typed by operators or sent to the API as
// recipients are normalised at ingest (SPEC §3).
type NumberRules struct{ rr *recipientRules }

// NewNumberRules returns the rules for the allowed countries besides Mexico.
func NewNumberRules(countries []string) *NumberRules {
	return &NumberRules{rr: newRecipientRules(countries)}
}

// Normalize returns raw normalised, or an EINVALID error naming it.
func (n *NumberRules) Normalize(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	b, _, ok := n.rr.normalize(nil, raw)
	if !ok {
		if raw == "" {
			return "", campaignd.Errorf(campaignd.EINVALID, "A number is required.")
		}
		return "", campaignd.Errorf(campaignd.EINVALID, "Invalid number %s: use 10 digits, or 52, +52 or 0052 and 10 digits (other countries: + and the international number, when allowed).", strconv.Quote(raw))
	}
	return string(b), nil
}
