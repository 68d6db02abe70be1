package ingest

// Log attribute keys of the pipeline (snake_case, one spelling each).
const (
	logKind     = "kind"
	logID       = "id"
	logLateness = "lateness"
	logError    = "error"
	logCount    = "count"
	logBID      = "broadcast_id"
	logStatus   = "status"
	logRetryIn  = "retry_in"

	// receipts
	logMessageID = "message_id"
	logStat      = "stat"

	// ingest
	ingestKeyUpload    = "upload_id"
	ingestKeyFile      = "file"
	ingestKeyBroadcast = "broadcast_id"
	ingestKeyResult    = "result"
	ingestKeyRows      = "rows"
	ingestKeyDuration  = "duration"
	ingestKeyError     = "error"
)
