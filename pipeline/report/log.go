package report

// Log attribute keys of package report (snake_case, one spelling each).
const (
	logDay         = "day"
	logFile        = "file"
	logRows        = "rows"
	logBytes       = "bytes"
	logSHA256      = "sha256"
	logID          = "id"
	logAttempts    = "attempts"
	logWasRows     = "was_rows"
	logFrom        = "from"
	logTo          = "to"
	logNextAttempt = "next_attempt"
	logError       = "error"
)
