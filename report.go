package campaignd

import "time"

// Report push states.
const (
	PushNone    = "none"    // no ftp_url configured: kept locally only
	PushPending = "pending" // produced, not pushed yet (or retrying)
	PushDone    = "pushed"
	PushFailed  = "failed" // last attempt failed; a retry is scheduled
)

// Report is one day's delivery report and its push state.
type Report struct {
	Day         string    `json:"date"` // YYYY-MM-DD, local
	FileName    string    `json:"file_name"`
	Rows        int64     `json:"rows"`
	Bytes       int64     `json:"bytes"`
	SHA256      string    `json:"sha256"`
	ProducedAt  time.Time `json:"produced_at"`
	Partial     bool      `json:"partial"` // the day had not ended when produced
	PushState   string    `json:"push_state"`
	PushedAt    time.Time `json:"pushed_at"`
	Attempts    int       `json:"attempts"`
	LastError   string    `json:"last_error,omitempty"`
	NextAttempt time.Time `json:"next_attempt"`
}

// ReportHeader is the exact header of the daily report (seed 000 §6).
const ReportHeader = "Sender,Recipient,Tracking ID,Campaign Name,Time Stamp,Delivery Status,Payback Member ID"

// ActionRequest is an operator action on a broadcast, with who asked and
// from where, for the audit log.
type ActionRequest struct {
	BroadcastID uint64
	Action      Action
	At          time.Time // schedule: the new date
	// Validity, when not 0, sets the broadcast's validity period: with
	// send, schedule or validity (which sets nothing else). The caller
	// checks it with CheckValidity; Act checks it again.
	Validity   time.Duration
	User       string
	RemoteAddr string
}

// Session is a logged-in web console session.
type Session struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	Role      Role      `json:"role"`
	CSRFToken string    `json:"csrf"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}
