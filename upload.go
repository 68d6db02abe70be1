package campaignd

import "time"

// Upload outcomes.
const (
	UploadReceived = "received" // durable, ingest job recorded, not yet ingested
	UploadAccepted = "accepted" // a broadcast was created
	UploadRejected = "rejected" // file-level errors, no broadcast
)

// What completed an upload (Upload.Via).
const (
	ViaSTOR   = "STOR"   // the STOR's 226
	ViaRename = "RNTO"   // a rename to a .csv name
	ViaMarker = "MARKER" // a NAME.csv.done or NAME.csv.ok marker file
)

// Upload is one file received over FTP, with the outcome of its ingest.
type Upload struct {
	ID   uint64 `json:"id"`
	User string `json:"user"`
	Path string `json:"path"` // inside the user's jail, as the partner named it
	// Stored is where the bytes wait for ingest inside the jail, when not at
	// Path: ftpd queues each completed upload under a name of its own, so a
	// second upload to the same name never replaces one not yet ingested.
	Stored string `json:"stored,omitempty"`
	// Via is what completed the upload: ViaSTOR, ViaRename or ViaMarker.
	Via        string    `json:"via,omitempty"`
	FileName   string    `json:"file_name"` // base name
	Size       int64     `json:"size"`
	SHA256     string    `json:"sha256"`
	RemoteAddr string    `json:"remote_addr"`
	ReceivedAt time.Time `json:"received_at"`
	FinishedAt time.Time `json:"finished_at"`
	Outcome    string    `json:"outcome"`
	// BroadcastID is set when the upload was accepted.
	BroadcastID uint64 `json:"broadcast_id,omitempty"`
	// Errors are the file-level errors (rejected) and the first row errors.
	Errors []FileError `json:"errors,omitempty"`
	// ErrorCount is the number of row errors, which may exceed len(Errors).
	ErrorCount int    `json:"error_count"`
	ResultPath string `json:"result_path,omitempty"` // processed/… or rejected/…
	// Imported is, for a suppression list dropped into suppressions/, how
	// many numbers it added to the list (no broadcast is made).
	Imported int `json:"imported,omitempty"`
}

// FileError is one line of <name>.errors.csv: line 0 (or the line found) for
// a file-level error.
type FileError struct {
	Line   int    `json:"line"`
	Column string `json:"column"`
	Value  string `json:"value"`
	Error  string `json:"error"`
	// FirstLine is, for a duplicate recipient, the line where the number
	// first appeared; 0 otherwise (and in errors stored before it existed).
	FirstLine int `json:"first_line,omitempty"`
}

// Row error kinds, as written in the error column.
const (
	RowInvalidRecipient = "invalid recipient"
	RowDuplicate        = "duplicate"
	RowEmptyMessage     = "empty message"
	RowTooLong          = "message too long"
	RowFieldCount       = "wrong number of fields"
	RowOptedOut         = "opted out" // on the suppression list (SPEC §11): skipped, not invalid
)

// Job is an ingest job: an upload that is durable but not yet ingested.
// BroadcastID is reserved when the job is recorded, so a rerun after a crash
// rewrites the same broadcast and can never make two.
type Job struct {
	Upload      Upload `json:"upload"`
	BroadcastID uint64 `json:"broadcast_id"`
	// Attempts counts the runs started, saved before each run, so that a
	// run that kills the process still counts and a restart does not start
	// the count again. RetryAt is when the next run is due; LastError is
	// why the last run failed.
	Attempts  int       `json:"attempts,omitempty"`
	RetryAt   time.Time `json:"retry_at,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// RowWriter streams the rows of one ingest job into the store. Rows are
// invisible until Commit writes the broadcast and the upload's outcome and
// removes the job, in one transaction; Abort drops them.
type RowWriter interface {
	// Add appends one valid row; its index is the number of rows added before.
	Add(r *Row) error
	// Count is the number of rows added.
	Count() uint32
	Commit(b *Broadcast, u *Upload) error
	Abort() error
}
