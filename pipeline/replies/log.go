package replies

// Log attribute keys of package replies (snake_case, one spelling each).
const (
	logError = "error"
)
