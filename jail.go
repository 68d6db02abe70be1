package campaignd

import "io"

// The folders at the top of each FTP jail. ftpd keeps them read-only for the
// partner and never ingests what is in them; ingest places each upload's
// result in processed/ or rejected/ and reads opt-out lists from
// suppressions/ (PROFECO's REPEP, another opt-out list: a file completed
// there is imported into the list instead of becoming a broadcast, and its
// result goes back to processed/ or rejected/); reports/ is the partner's.
const (
	ProcessedDir    = "processed"
	RejectedDir     = "rejected"
	ReportsDir      = "reports"
	SuppressionsDir = "suppressions"
)

// Inbox is the uploaded files as ingest sees them: where each upload waits
// and where its result goes. The FTP jails are ftpd's; ftpd implements it,
// and no other package builds a path into a jail. An upload is found by its
// User, Stored (else Path) and ResultPath.
type Inbox interface {
	// Open opens the file of u for reading: where an earlier run placed it
	// (ResultPath), if it is there, else where it waits.
	Open(u *Upload) (io.ReadSeekCloser, error)
	// Gone reports whether the file of u is neither placed nor waiting.
	Gone(u *Upload) bool
	// Place moves the file of u into dir (ProcessedDir or RejectedDir) at
	// the top of the jail, under its name or, when that is taken, a free
	// name made from it, never replacing a file. errs, when not nil, is
	// streamed in as the content of <name>.errors.csv; nil removes a stale
	// one. The chosen path is set on u.ResultPath and passed to record
	// before anything moves, so that a run cut short by a crash finds the
	// file where it went; a rerun keeps a name an earlier run recorded. On
	// an error u.ResultPath names the result only if the file is there.
	Place(u *Upload, dir string, errs io.Reader, record func(*Upload) error) error
}
