package ingest

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

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

// jailRoot is the directory holding processed/ and rejected/: the
// uploader's jail root, or the file's directory when none is recorded.
func jailRoot(u *campaignd.Upload) string {
	if u.UserRoot != "" {
		return u.UserRoot
	}
	return filepath.Dir(u.RealPath)
}

// locate returns where the uploaded file is now: at the result path an
// earlier run of the job recorded (and moved it to), else where it was
// uploaded. A copy left at the upload path by a crash between link and
// unlink is removed.
func locate(u *campaignd.Upload) (string, error) {
	if u.ResultPath != "" {
		p := filepath.Join(jailRoot(u), filepath.FromSlash(u.ResultPath))
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			if ri, err := os.Stat(u.RealPath); err == nil && os.SameFile(fi, ri) {
				os.Remove(u.RealPath)
			}
			return p, nil
		}
	}
	if fi, err := os.Stat(u.RealPath); err == nil && fi.Mode().IsRegular() {
		return u.RealPath, nil
	}
	return "", errNotFound
}

// placeResult puts the file and its errors file in dir (processed or
// rejected) under a name that overwrites nothing, recording the chosen path
// on the upload (durably) before anything moves.
func (in *Ingester) placeResult(u *campaignd.Upload, src, dir string, v *validation, errs *errorSink) error {
	root := jailRoot(u)
	if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
		return err
	}
	var target string
	old := u.ResultPath
	if old != "" && path.Dir(old) == dir {
		// An earlier run chose this name: keep it if the file is there
		// already or the name is still free.
		p := filepath.Join(root, filepath.FromSlash(old))
		if p == src || !exists(p) {
			target = p
		}
	}
	if target == "" {
		name, err := freeName(filepath.Join(root, dir), baseName(u), in.o.Now().In(in.o.Location).Format("20060102-150405"))
		if err != nil {
			return err
		}
		target = filepath.Join(root, dir, name)
		u.ResultPath = dir + "/" + name
		if err := in.db.SaveUpload(u); err != nil {
			return err
		}
		if err := in.db.Sync(); err != nil {
			return err
		}
		if old != "" && old != u.ResultPath {
			// The decision changed since an earlier run: its errors file goes.
			os.Remove(filepath.Join(root, filepath.FromSlash(old)) + ".errors.csv")
		}
	}
	errPath := target + ".errors.csv"
	if len(v.FileErrors) > 0 || errs.n > 0 {
		if err := writeErrorsFile(errPath, v.FileErrors, errs); err != nil {
			return err
		}
	} else if err := os.Remove(errPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if src == target {
		return nil
	}
	return moveNoReplace(src, target)
}

// baseName is the uploaded file's name, safe to join to a directory.
func baseName(u *campaignd.Upload) string {
	name := filepath.Base(u.FileName)
	if name == "." || name == ".." || name == string(filepath.Separator) || name == "" {
		name = filepath.Base(u.RealPath)
	}
	return name
}

// maxResultName is the longest name a result may have: its errors file's
// temporary name ("." + name + ".errors.csv" + ".tmp") must fit the 255
// bytes a file name may have.
const maxResultName = 255 - len(".") - len(".errors.csv") - len(".tmp")

// freeName returns name, or name with a timestamp suffix (and a counter if
// need be), such that neither it nor its errors file exists in dir. A name
// too long for the suffix and the errors file is cut before its extension
// (at a character boundary).
func freeName(dir, name, stamp string) (string, error) {
	ext := filepath.Ext(name)
	if len(ext) > 16 {
		ext = "" // not an extension, a long name with a dot
	}
	stem := strings.TrimSuffix(name, ext)
	for i := 0; i < 1000; i++ {
		suffix := ""
		switch {
		case i == 1:
			suffix = "_" + stamp
		case i > 1:
			suffix = "_" + stamp + "-" + strconv.Itoa(i)
		}
		cand := fitName(stem, suffix+ext)
		p := filepath.Join(dir, cand)
		if !exists(p) && !exists(p+".errors.csv") {
			return cand, nil
		}
	}
	return "", fmt.Errorf("no free name for %s in %s", name, dir)
}

// fitName joins stem and tail, cutting stem so the result is at most
// maxResultName bytes.
func fitName(stem, tail string) string {
	if n := maxResultName - len(tail); len(stem) > n {
		stem = stem[:max(n, 0)]
		// Drop a character the cut split.
		for i := len(stem) - 1; i >= 0 && i >= len(stem)-utf8.UTFMax; i-- {
			if utf8.RuneStart(stem[i]) {
				if !utf8.FullRuneInString(stem[i:]) {
					stem = stem[:i]
				}
				break
			}
		}
	}
	return stem + tail
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// moveNoReplace moves src to dst, failing rather than overwriting dst: a
// hard link then an unlink (a crash in between leaves both names, which
// locate cleans up); a plain rename where links are not supported.
func moveNoReplace(src, dst string) error {
	err := os.Link(src, dst)
	switch {
	case err == nil:
		if err := os.Remove(src); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return syncDir(filepath.Dir(dst))
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("move %s: %s exists", filepath.Base(src), dst)
	}
	if exists(dst) {
		return fmt.Errorf("move %s: %s exists", filepath.Base(src), dst)
	}
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dst))
}

// writeErrorsFile writes <name>.errors.csv: the file-level errors, then the
// row errors, through a temporary file renamed into place.
func writeErrorsFile(p string, fileErrs []campaignd.FileError, errs *errorSink) error {
	tmp := filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	defer f.Close()
	w := csv.NewWriter(f)
	w.UseCRLF = true
	w.Write(errorsHeader)
	for _, e := range fileErrs {
		rec := errorRecord(e, errs.words)
		w.Write(rec[:])
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	rows, err := errs.rows()
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rows); err != nil {
		return err
	}
	if errs.n > errs.written {
		rec := errorRecord(moreErrors(errs.n-errs.written, errs.n), errs.words)
		w.Write(rec[:])
		w.Flush()
		if err := w.Error(); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
