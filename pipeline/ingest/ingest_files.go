package ingest

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"campaignd"
)

// errorsHeader is the header of <name>.errors.csv (SPEC §2).
var errorsHeader = []string{"line", "column", "value", "error"}

// errorSink collects row errors: the first ones in memory for the upload
// record, up to max in a temporary CSV file, so that a file with a million
// bad rows costs neither memory nor a giant errors file; n counts them all.
type errorSink struct {
	first   []campaignd.FileError
	n       int
	max     int // row errors written; 0: DefaultMaxErrorRows
	written int
	f       *os.File
	w       *csv.Writer
	rec     [4]string
	// words is the language of the error column; nil: English.
	words campaignd.Words
}

func (s *errorSink) add(e campaignd.FileError) error {
	s.n++
	if len(s.first) < maxStoredRowErrors {
		s.first = append(s.first, e)
	}
	if s.max <= 0 {
		s.max = DefaultMaxErrorRows
	}
	if s.written >= s.max {
		return nil
	}
	s.written++
	if s.f == nil {
		f, err := os.CreateTemp("", "campaignd-errors-*.csv")
		if err != nil {
			return fmt.Errorf("row errors: %w", err)
		}
		s.f, s.w = f, csv.NewWriter(f)
		s.w.UseCRLF = true
	}
	s.rec = errorRecord(e, s.words)
	return s.w.Write(s.rec[:])
}

// errorRecord is one line of <name>.errors.csv, its user-supplied text
// neutralised against spreadsheet formulas (campaignd.SafeCSV). The error
// is explained in w's language (nil: English), as the console explains it,
// and neutralised too: it may start with a column name.
func errorRecord(e campaignd.FileError, w campaignd.Words) [4]string {
	if w == nil {
		w = campaignd.RowErrorWords(campaignd.LangEN)
	}
	return [4]string{strconv.Itoa(e.Line), campaignd.SafeCSV(e.Column), campaignd.SafeCSV(e.Value), campaignd.SafeCSV(campaignd.ExplainRowError(w, e))}
}

// rows returns a reader of the row errors written so far.
func (s *errorSink) rows() (io.Reader, error) {
	if s.f == nil {
		return strings.NewReader(""), nil
	}
	s.w.Flush()
	if err := s.w.Error(); err != nil {
		return nil, err
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return s.f, nil
}

func (s *errorSink) close() {
	if s != nil && s.f != nil {
		s.f.Close()
		os.Remove(s.f.Name())
		s.f = nil
	}
}

// place puts the file of u in dir (processed or rejected) with its errors
// file, through the inbox, recording the chosen path on the upload
// (durably) before anything moves. A file gone meanwhile is errNotFound.
func (in *Ingester) place(u *campaignd.Upload, dir string, fileErrs []campaignd.FileError, errs *errorSink) error {
	content, err := errorsFile(fileErrs, errs)
	if err != nil {
		return err
	}
	err = in.o.Inbox.Place(u, dir, content, in.record)
	if err != nil && in.o.Inbox.Gone(u) {
		return fmt.Errorf("%w: %w", errNotFound, err)
	}
	return err
}

// record saves u durably: a result path is recorded before the file moves.
func (in *Ingester) record(u *campaignd.Upload) error {
	if err := in.db.SaveUpload(u); err != nil {
		return err
	}
	return in.db.Sync()
}

// errorsFile streams the content of <name>.errors.csv: the header, the
// file-level errors, the row errors (from the sink's temporary file) and a
// last line saying how many more there were; nil when there is no error.
func errorsFile(fileErrs []campaignd.FileError, errs *errorSink) (io.Reader, error) {
	if len(fileErrs) == 0 && errs.n == 0 {
		return nil, nil
	}
	var head, tail bytes.Buffer
	w := csv.NewWriter(&head)
	w.UseCRLF = true
	w.Write(errorsHeader)
	for _, e := range fileErrs {
		rec := errorRecord(e, errs.words)
		w.Write(rec[:])
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, err
	}
	rows, err := errs.rows()
	if err != nil {
		return nil, err
	}
	if errs.n > errs.written {
		w := csv.NewWriter(&tail)
		w.UseCRLF = true
		rec := errorRecord(moreErrors(errs.n-errs.written, errs.n), errs.words)
		w.Write(rec[:])
		w.Flush()
		if err := w.Error(); err != nil {
			return nil, err
		}
	}
	return io.MultiReader(&head, rows, &tail), nil
}
