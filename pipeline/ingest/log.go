package ingest

// Log attribute keys of package ingest (snake_case, one spelling each).
const (
	ingestKeyUpload    = "upload_id"
	ingestKeyFile      = "file"
	ingestKeyBroadcast = "broadcast_id"
	ingestKeyResult    = "result"
	ingestKeyRows      = "rows"
	ingestKeyDuration  = "duration"
	ingestKeyError     = "error"
)
