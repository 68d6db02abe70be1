package webui

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"campaignd"
)

// How much of an upload's errors a page shows. However many errors an
// upload stored and however long their columns and values, a list of files
// costs at most its page size × listErrors × the cut lengths, and one
// upload's errors are read a page at a time.
const (
	listErrors      = 5    // errors per upload in a list (console and API)
	skippedErrors   = 20   // errors on a broadcast's page
	errorsPerPage   = 100  // errors per page of one upload (console)
	maxShownField   = 200  // bytes of an error's column or value shown
	maxShownMessage = 500  // bytes of an error's text shown
	filesMaxLimit   = 200  // API: most files per request (default 50)
	errorsMaxLimit  = 1000 // API: most errors per request (default 100)
)

// clipText cuts s to at most n bytes on a character boundary, marking the
// cut with "…".
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

func clipError(e campaignd.FileError) campaignd.FileError {
	e.Column = clipText(e.Column, maxShownField)
	e.Value = clipText(e.Value, maxShownField)
	e.Error = clipText(e.Error, maxShownMessage)
	return e
}

func clipErrors(errs []campaignd.FileError, n int) []campaignd.FileError {
	out := make([]campaignd.FileError, 0, min(len(errs), n))
	for _, e := range errs[:min(len(errs), n)] {
		out = append(out, clipError(e))
	}
	return out
}

// boundUpload returns a copy of u with at most n errors, each cut, and an
// ErrorCount that is never below the number of errors it had: what the
// console and the API show of an upload, whatever the backend returned.
func boundUpload(u *campaignd.Upload, n int) *campaignd.Upload {
	c := *u
	c.ErrorCount = max(c.ErrorCount, len(u.Errors))
	c.Errors = clipErrors(u.Errors, n)
	c.Path = clipText(c.Path, 1024)
	c.FileName = clipText(c.FileName, 512)
	c.ResultPath = clipText(c.ResultPath, 1024)
	return &c
}

func parseUploadID(r *http.Request) (uint64, error) {
	v := chi.URLParam(r, "id")
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil || id == 0 {
		return 0, campaignd.Errorf(campaignd.ENOTFOUND, "No file %q.", v)
	}
	return id, nil
}

// apiFiles is GET /api/v1/files[?offset=&limit=]: newest first, limit 1 to
// filesMaxLimit (default 50), each file with its first listErrors errors.
func (s *Server) apiFiles(w http.ResponseWriter, r *http.Request) {
	offset, limit, err := parseRangeMax(r, 50, filesMaxLimit)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	list, total, err := s.o.Backend.Uploads(r.Context(), offset, limit, listErrors)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := make([]*APIUpload, 0, min(len(list), limit))
	for _, u := range list[:min(len(list), limit)] {
		out = append(out, toAPIUpload(u, listErrors))
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Total  int               `json:"total"`
		Offset int               `json:"offset"`
		Limit  int               `json:"limit"`
		Files  []json.RawMessage `json:"files"`
	}{total, offset, limit, encodeEach(s, r, out, keyUpload, func(u *APIUpload) uint64 { return u.ID })})
}

// apiFile is GET /api/v1/files/{id}: one file, with its first listErrors
// errors.
func (s *Server) apiFile(w http.ResponseWriter, r *http.Request) {
	id, err := parseUploadID(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	u, err := s.o.Backend.Upload(r.Context(), id, listErrors)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toAPIUpload(u, listErrors), keyUpload, id)
}

// apiFileErrors is GET /api/v1/files/{id}/errors[?offset=&limit=]: every
// stored error of one file, a page at a time (limit 1 to errorsMaxLimit,
// default 100).
func (s *Server) apiFileErrors(w http.ResponseWriter, r *http.Request) {
	id, err := parseUploadID(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	offset, limit, err := parseRangeMax(r, 100, errorsMaxLimit)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	u, stored, err := s.o.Backend.UploadErrors(r.Context(), id, offset, limit)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		ID         uint64                `json:"id"`
		ErrorCount int                   `json:"error_count"`
		Total      int                   `json:"total"`
		Offset     int                   `json:"offset"`
		Limit      int                   `json:"limit"`
		Errors     []campaignd.FileError `json:"errors"`
	}{id, max(u.ErrorCount, stored), stored, offset, limit, clipErrors(u.Errors, limit)}, keyUpload, id)
}

type filesData struct {
	Uploads []*campaignd.Upload
	Total   int
	Pager
}

func (s *Server) handleFiles(w http.ResponseWriter, r *http.Request) {
	n, err := parsePage(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	list, total, err := s.o.Backend.Uploads(r.Context(), (n-1)*perPage, perPage, listErrors)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	d := filesData{Total: total, Pager: newPager(url.Values{}, "/files", n, total, perPage)}
	for _, u := range list[:min(len(list), perPage)] {
		d.Uploads = append(d.Uploads, boundUpload(u, listErrors))
	}
	s.renderPage(w, r, http.StatusOK, "files", &page{Title: s.loc(r).T("Files"), Nav: "files", Data: d})
}

// fileData is one upload's page: the upload and a page of its errors.
type fileData struct {
	U      *campaignd.Upload
	Errors []campaignd.FileError
	Stored int
	Pager
}

// handleFile is GET /files/{id}[?page=]: one upload with its errors,
// errorsPerPage at a time.
func (s *Server) handleFile(w http.ResponseWriter, r *http.Request) {
	id, err := parseUploadID(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	n, err := parsePage(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	u, stored, err := s.o.Backend.UploadErrors(r.Context(), id, (n-1)*errorsPerPage, errorsPerPage)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	d := fileData{U: boundUpload(u, 0), Errors: clipErrors(u.Errors, errorsPerPage), Stored: stored,
		Pager: newPager(url.Values{}, "/files/"+strconv.FormatUint(id, 10), n, stored, errorsPerPage)}
	d.U.ErrorCount = max(d.U.ErrorCount, stored)
	s.renderPage(w, r, http.StatusOK, "file", &page{Title: d.U.FileName, Nav: "files", Data: d})
}
