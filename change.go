package campaignd

import "time"

// Change is one message state change made by the engine. It is applied only
// if the stored state is still From, so a stale or repeated change never
// overwrites a newer state.
type Change struct {
	BroadcastID uint64
	Index       uint32
	From, To    MessageState
	// Attempts, when > 0, replaces the stored number of attempts.
	Attempts int
	// ErrorCode is kept with a final submit error (REJECTD).
	ErrorCode uint32
	// SMSCIDs are the part ids when To is submitted.
	SMSCIDs []string
	// At is SubmittedAt when To is submitted, SettledAt when To is final.
	At time.Time
}

// Timer is one pending timer of the durable timing wheel: Kind says what
// fires (a broadcast start, a retry, a receipt sweep…), ID which one.
type Timer struct {
	Kind string
	ID   string
	Due  time.Time // millisecond precision
}
