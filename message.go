package campaignd

import "time"

// MessageState is where one message stands (SPEC §4).
type MessageState string

// Message states: queued and submitted are transient; cancelled and the SMSC
// statuses are final.
const (
	StateQueued        MessageState = "queued"
	StateSubmitted     MessageState = "submitted"
	StateCancelled     MessageState = "cancelled"
	StateDelivered     MessageState = "DELIVRD"
	StateUndeliverable MessageState = "UNDELIV"
	StateExpired       MessageState = "EXPIRED"
	StateDeleted       MessageState = "DELETED"
	StateRejected      MessageState = "REJECTD"
	StateAccepted      MessageState = "ACCEPTD"
	StateUnknown       MessageState = "UNKNOWN"
	// StateSuppressed: the number opted out after its file was ingested;
	// the message is never submitted and is reported as SUPPRESSED.
	StateSuppressed MessageState = "suppressed"
)

// FinalStates lists the final delivery statuses, as reported to Payback.
var FinalStates = []MessageState{StateDelivered, StateUndeliverable, StateExpired, StateDeleted, StateRejected, StateAccepted, StateUnknown}

// Final reports whether s is a final delivery status (cancelled is final
// too, but is never reported).
func (s MessageState) Final() bool {
	if s == StateSuppressed {
		return true // settled without a submit; not in FinalStates, no receipt says it
	}
	for _, f := range FinalStates {
		if s == f {
			return true
		}
	}
	return false
}

// Reported is the Delivery Status written in the daily report: the state
// itself, except SUPPRESSED for a suppressed message.
func (s MessageState) Reported() string {
	if s == StateSuppressed {
		return "SUPPRESSED"
	}
	return string(s)
}

// ParseFinalState maps a receipt's stat text to a final state; anything
// unknown becomes UNKNOWN.
func ParseFinalState(stat string) MessageState {
	for _, f := range FinalStates {
		if string(f) == stat {
			return f
		}
	}
	return StateUnknown
}

// severity orders final states so that a multipart message settles as the
// worst of its parts.
func (s MessageState) severity() int {
	switch s {
	case StateDelivered:
		return 0
	case StateAccepted:
		return 1
	case StateUnknown:
		return 2
	case StateExpired:
		return 3
	case StateDeleted:
		return 4
	case StateUndeliverable:
		return 5
	case StateRejected:
		return 6
	}
	return 2
}

// Worst returns the worse of two final states.
func Worst(a, b MessageState) MessageState {
	if a == "" {
		return b
	} else if b == "" {
		return a
	}
	if b.severity() > a.severity() {
		return b
	}
	return a
}

// Row is one valid row of an uploaded file: what a message is made of.
// Rows are immutable once ingested.
type Row struct {
	// Line is the line of the row in the uploaded file (1 = header).
	Line int
	// Recipient is normalised (52 + 10 digits, or E.164 digits for allowed
	// countries); RecipientRaw is as written in the file.
	Recipient    string
	RecipientRaw string
	MemberID     string
	// Text is the message after {Header} substitution.
	Text     string
	Encoding string // "GSM-7" or "UCS-2"
	Segments int
}

// Message is a row with its delivery state.
type Message struct {
	Row
	BroadcastID uint64       `json:"broadcast_id"`
	Index       uint32       `json:"index"`
	TrackingID  uint64       `json:"tracking_id"`
	State       MessageState `json:"state"`
	Attempts    int          `json:"attempts"`
	// ErrorCode is the SMPP command_status of a final submit error.
	ErrorCode uint32 `json:"error_code,omitempty"`
	// SMSCIDs are the SMSC message ids, one per part.
	SMSCIDs []string `json:"smsc_ids,omitempty"`
	// Parts are the final statuses received so far, one per part ("" while
	// awaiting a receipt).
	Parts []MessageState `json:"parts,omitempty"`
	// SubmittedAt is when the SMSC accepted the (first part of the) message.
	SubmittedAt time.Time `json:"submitted_at"`
	// SettledAt is when the final status was set.
	SettledAt time.Time `json:"settled_at"`
}
