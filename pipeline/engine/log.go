package engine

// Log attribute keys of package engine (snake_case, one spelling each).
const (
	logLateness = "lateness"
	logError    = "error"
	logCount    = "count"
	logBID      = "broadcast_id"
	logStatus   = "status"

	// receipts
	logMessageID = "message_id"
	logStat      = "stat"
)
