package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"campaignd"
)

// Defaults of the ingest options (SPEC §9).
const (
	DefaultMaxRows           = 5_000_000
	DefaultMaxInvalidPercent = 10
	DefaultMaxSegments       = 6
	DefaultDuplicateWindow   = 720 * time.Hour
	DefaultSender            = "28776"
	DefaultTimezone          = "America/Mexico_City"

	DefaultMaxErrorRows = 10_000
	DefaultMaxAttempts  = 8
	DefaultRetryBase    = 5 * time.Second

	// maxStoredRowErrors is how many row errors are kept on the Upload
	// record (its ErrorCount is exact; the errors file has more), so that
	// the record stays small whatever the file.
	maxStoredRowErrors = 20
)

// Upload outcomes and row results, as passed to Events.
const (
	ResultValid     = "valid"
	ResultInvalid   = "invalid"
	ResultDuplicate = "duplicate"
)

// Options configure an Ingester. Zero values take the defaults of
// SPEC §9; MaxInvalidPercent 0 means the default 10 — pass a negative value
// to allow no invalid row at all.
type Options struct {
	Location          *time.Location // dates without an offset; default America/Mexico_City
	MaxRows           int
	MaxInvalidPercent int
	MaxSegments       int
	DuplicateWindow   time.Duration
	DefaultSender     string
	AllowedCountries  []string // region codes besides Mexico, e.g. "US"
	MaxUploadBytes    int64    // 0: no limit
	// MaxFieldBytes and MaxRecordBytes cap one field and one record (a
	// line, or several when a quoted field spans lines) while reading;
	// 0: 64 KB and 1 MB.
	MaxFieldBytes  int
	MaxRecordBytes int
	// MaxErrorRows caps the row errors listed in <name>.errors.csv (and
	// returned by Check); a last line says how many more there were.
	// 0: 10,000.
	MaxErrorRows int
	// MaxAttempts bounds how often a job is tried when it fails for a
	// reason that may pass (disk, store); RetryBase is the pause after the
	// first failure, doubled after each. 0: 8 and 5 s.
	MaxAttempts int
	RetryBase   time.Duration
	// Inbox is where uploads are read and their results placed (ftpd's
	// jails); Run needs it, Check does not.
	Inbox campaignd.Inbox
	// Language is the language of the error column of <name>.errors.csv:
	// "en" (default: the uploader is Syniverse) or "es". The errors stored
	// on the upload stay in English; the console translates them.
	Language string
	Now      func() time.Time
	Logger   *slog.Logger
	Events   Events // nil: none
}

// Events receives ingest metrics as events.
type Events interface {
	// RowsIngested counts rows by result: "valid", "invalid", "duplicate".
	RowsIngested(result string, n int)
	// IngestDone reports one finished ingest: "accepted", "rejected" (the
	// file's content), or "failed" (the job could not finish: a lasting
	// failure, or transient ones past the retry limit; the upload is then
	// rejected with the reason).
	IngestDone(result string, d time.Duration)
	// IngestRetry reports a job that failed for a reason that may pass and
	// will be tried again.
	IngestRetry()
}

// Store is what ingest needs from the store.
type Store interface {
	NewBroadcastWriter(job *campaignd.Job) (campaignd.RowWriter, error)
	RejectUpload(u *campaignd.Upload) error
	SaveUpload(u *campaignd.Upload) error
	SaveJob(job *campaignd.Job) error
	DuplicateOf(sha string, since time.Time) (uint64, bool, error)
	Upload(id uint64) (*campaignd.Upload, error)
	Broadcast(id uint64) (*campaignd.Broadcast, error)
	Sync() error
	// IsTooLarge reports whether err is the store refusing a value or a
	// transaction for its size: writing it again cannot succeed.
	IsTooLarge(err error) bool
}

// Ingester turns uploaded files into broadcasts (SPEC §3). Run calls are
// serialised: one file is ingested at a time, which bounds memory and makes
// duplicate-file detection exact between two uploads of the same file.
type Ingester struct {
	db     Store
	o      Options
	logger *slog.Logger
	mu     sync.Mutex
}

// NewIngester returns an Ingester writing to db.
func NewIngester(db Store, o Options) *Ingester {
	if o.Location == nil {
		loc, err := time.LoadLocation(DefaultTimezone)
		if err != nil {
			loc = time.UTC
		}
		o.Location = loc
	}
	if o.MaxRows <= 0 {
		o.MaxRows = DefaultMaxRows
	}
	if o.Language != campaignd.LangES {
		o.Language = campaignd.LangEN
	}
	if o.MaxInvalidPercent == 0 {
		o.MaxInvalidPercent = DefaultMaxInvalidPercent
	} else if o.MaxInvalidPercent < 0 {
		o.MaxInvalidPercent = 0
	}
	if o.MaxSegments <= 0 {
		o.MaxSegments = DefaultMaxSegments
	}
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = DefaultDuplicateWindow
	}
	if o.DefaultSender == "" {
		o.DefaultSender = DefaultSender
	}
	if o.MaxFieldBytes <= 0 {
		o.MaxFieldBytes = DefaultMaxFieldBytes
	}
	if o.MaxRecordBytes <= 0 {
		o.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if o.MaxErrorRows <= 0 {
		o.MaxErrorRows = DefaultMaxErrorRows
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.RetryBase <= 0 {
		o.RetryBase = DefaultRetryBase
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Events == nil {
		o.Events = nopEvents{}
	}
	return &Ingester{db: db, o: o, logger: o.Logger.With("system", "ingest")}
}

type nopEvents struct{}

func (nopEvents) RowsIngested(string, int)         {}
func (nopEvents) IngestDone(string, time.Duration) {}
func (nopEvents) IngestRetry()                     {}

// CheckResult is what ingest would decide about a file.
type CheckResult struct {
	FileName string `json:"file_name"`
	// Decision is "accepted" or "rejected".
	Decision string `json:"decision"`
	// Status, Name, Sender and ScheduledAt are those of the broadcast an
	// accepted file would create.
	Status      campaignd.Status `json:"status,omitempty"`
	Name        string           `json:"name,omitempty"`
	Sender      string           `json:"sender,omitempty"`
	ScheduledAt time.Time        `json:"scheduled_at,omitzero"`
	// Validity is the validity column's period ("2d"); empty: smpp.validity.
	Validity string   `json:"validity,omitempty"`
	Charset  string   `json:"charset,omitempty"`
	Notes    []string `json:"notes,omitempty"`
	Size     int64    `json:"size"`
	SHA256   string   `json:"sha256,omitempty"`
	// DuplicateOf is the broadcast made from the same file, when rejected
	// as a duplicate.
	DuplicateOf uint64 `json:"duplicate_of,omitempty"`
	Rows        int    `json:"rows"`
	Valid       int    `json:"valid"`
	Invalid     int    `json:"invalid"`
	Duplicate   int    `json:"duplicate"`
	OptedOut    int    `json:"opted_out"`
	Segments    int64  `json:"segments"`
	// Errors are the file-level errors, then the row errors in file order,
	// at most MaxErrorRows of them and a last line saying how many more.
	Errors []campaignd.FileError `json:"errors,omitempty"`
	// ErrorCount is the number of row errors, listed or not.
	ErrorCount int `json:"error_count"`
	// Warnings are what would not reject the file here but might in an
	// upload: a last line without a line end is rejected as a truncated
	// upload when the upload is completed by STOR.
	Warnings []string `json:"warnings,omitempty"`
}

// outcome is one ingest's result before it is stored.
type outcome struct {
	scan        fileScan
	v           validation
	dupOf       uint64
	status      campaignd.Status
	scheduledAt time.Time
	name        string
	sender      string
}

func (oc *outcome) accepted() bool { return !oc.v.rejected() }

// Check validates the file read from r as Run would, without writing
// anything, and returns every error. name is the file name (for the
// broadcast name). When the Ingester has a store, a file already accepted
// within the duplicate window is reported as Run would.
func (in *Ingester) Check(r io.Reader, name string) (*CheckResult, error) {
	rs, ok := r.(io.ReadSeeker)
	if !ok {
		// Detecting the charset needs two passes: spool to a temporary file.
		f, err := os.CreateTemp("", "campaignd-check-*.csv")
		if err != nil {
			return nil, fmt.Errorf("ingest: check %q: %w", name, err)
		}
		defer os.Remove(f.Name())
		defer f.Close()
		if _, err := io.Copy(f, r); err != nil {
			return nil, fmt.Errorf("ingest: check %q: %w", name, err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("ingest: check %q: %w", name, err)
		}
		rs = f
	}
	var rowErrs []campaignd.FileError
	nErrs := 0
	oc, err := in.evaluate(context.Background(), rs, name, false, nil, func(e campaignd.FileError) error {
		if nErrs++; len(rowErrs) < in.o.MaxErrorRows {
			rowErrs = append(rowErrs, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ingest: check %q: %w", name, err)
	}
	res := &CheckResult{
		FileName:    name,
		Decision:    campaignd.UploadRejected,
		Charset:     oc.v.Charset,
		Notes:       oc.v.Notes,
		Size:        oc.scan.Size,
		SHA256:      oc.scan.SHA256,
		DuplicateOf: oc.dupOf,
		Rows:        oc.v.Rows,
		Valid:       oc.v.Valid,
		Invalid:     oc.v.Invalid,
		Duplicate:   oc.v.Dup,
		OptedOut:    oc.v.OptedOut,
		Segments:    oc.v.Segments,
		Errors:      append(oc.v.FileErrors, rowErrs...),
		ErrorCount:  nErrs,
	}
	if nErrs > len(rowErrs) {
		res.Errors = append(res.Errors, moreErrors(nErrs-len(rowErrs), nErrs))
	}
	if oc.v.Truncated != "" {
		res.Warnings = append(res.Warnings, oc.v.Truncated+" — an upload completed by STOR is rejected for this")
	}
	if oc.accepted() {
		res.Decision = campaignd.UploadAccepted
		res.Status, res.ScheduledAt = oc.status, oc.scheduledAt
		if oc.v.Validity != 0 {
			res.Validity = campaignd.FormatValidity(oc.v.Validity)
		}
		res.Name, res.Sender = oc.name, oc.sender
	}
	return res, nil
}

// evaluate runs both passes over the file: scan (size, hash, charset, NUL),
// the duplicate-file check, then the rows. Valid rows go to emit (nil: only
// counted), row errors to rowError. strictEnd rejects a file whose last line
// is cut (an upload completed by STOR). It decides the broadcast's status.
func (in *Ingester) evaluate(ctx context.Context, rs io.ReadSeeker, fileName string, strictEnd bool, emit func(*campaignd.Row) error, rowError func(campaignd.FileError) error) (*outcome, error) {
	oc := &outcome{}
	v := &oc.v
	scan, err := scanFile(rs, in.o.MaxUploadBytes)
	if err != nil {
		return nil, err
	}
	oc.scan = scan
	switch {
	case scan.TooBig:
		v.fileError(0, "", "", fmt.Sprintf("the file is over the size limit of %d bytes", in.o.MaxUploadBytes))
	case scan.Size == 0:
		v.fileError(0, "", "", "empty file")
	case scan.NULLine > 0:
		v.fileError(scan.NULLine, "", "", "not a text file (NUL bytes found); save it as CSV, UTF-8 or Windows-1252")
	}
	if v.rejected() {
		return oc, nil
	}
	if in.db != nil {
		bid, dup, err := in.db.DuplicateOf(scan.SHA256, in.o.Now().Add(-in.o.DuplicateWindow))
		if err != nil {
			return nil, err
		}
		if dup {
			oc.dupOf = bid
			v.fileError(0, "", "", fmt.Sprintf("the same file (SHA-256 %s) was already accepted as broadcast %d", scan.SHA256, bid))
			return oc, nil
		}
	}
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	v.Charset = CharsetUTF8
	if !scan.UTF8 {
		v.Charset = CharsetWindows1252
		v.Notes = append(v.Notes, "The file is not valid UTF-8; it was read as Windows-1252.")
	}
	check, release, err := in.suppressionCheck()
	if err != nil {
		return nil, err
	}
	defer release()
	tr := textReader(rs, scan)
	vr := &validator{
		suppressed:  check,
		loc:         in.o.Location,
		maxRows:     in.o.MaxRows,
		maxSegments: in.o.MaxSegments,
		recipients:  newRecipientRules(in.o.AllowedCountries),
		sizeHint:    scan.Lines,
		maxField:    in.o.MaxFieldBytes,
		maxRecord:   in.o.MaxRecordBytes,
		strictEnd:   strictEnd,
		now:         in.o.Now(),
		emit:        emit,
		rowError:    rowError,
	}
	if err := vr.run(ctx, tr, detectDelimiter(tr), v); err != nil {
		return nil, err
	}
	in.decide(oc, fileName)
	return oc, nil
}

// decide applies the whole-file rules once every row is read, and the
// broadcast's status, name and sender.
func (in *Ingester) decide(oc *outcome, fileName string) {
	v := &oc.v
	if v.rejected() {
		return
	}
	switch {
	case v.Rows == 0:
		v.fileError(0, "", "", "no valid row: the file has a header but no data rows")
		return
	case v.Valid == 0:
		v.fileError(0, "", "", fmt.Sprintf("no valid row: all %d rows have errors", v.Rows))
		return
	case v.Invalid*100 > in.o.MaxInvalidPercent*v.Rows:
		v.fileError(0, "", "", fmt.Sprintf("%d of %d rows are invalid (%.1f%%), more than the %d%% allowed",
			v.Invalid, v.Rows, float64(v.Invalid)*100/float64(v.Rows), in.o.MaxInvalidPercent))
		return
	}
	now := in.o.Now()
	switch {
	case !v.HasDate:
		oc.status = campaignd.StatusPending
	case v.Date.After(now):
		oc.status, oc.scheduledAt = campaignd.StatusScheduled, v.Date
	default:
		oc.status, oc.scheduledAt = campaignd.StatusSending, v.Date
	}
	oc.name = v.Name
	if oc.name == "" {
		base := filepath.Base(fileName)
		oc.name = strings.TrimSuffix(base, filepath.Ext(base))
	}
	oc.sender = v.Sender
	if oc.sender == "" {
		oc.sender = in.o.DefaultSender
	}
}

// moreErrors is the last line of a cut list of row errors.
func moreErrors(more, total int) campaignd.FileError {
	return campaignd.FileError{Error: fmt.Sprintf("and %d more row errors not listed (%d in all)", more, total)}
}

// errNotFound marks an upload whose file is gone.
var errNotFound = errors.New("file not found")
