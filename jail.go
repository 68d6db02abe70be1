package campaignd

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
