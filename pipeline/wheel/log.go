package wheel

// Log attribute keys of package wheel (snake_case, one spelling each).
const (
	logKind     = "kind"
	logID       = "id"
	logLateness = "lateness"
	logError    = "error"
	logCount    = "count"
	logRetryIn  = "retry_in"
)
