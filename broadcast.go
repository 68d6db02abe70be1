package campaignd

import "time"

// Status is the lifecycle state of a broadcast (SPEC §4).
type Status string

// Broadcast statuses.
const (
	StatusPending   Status = "pending"
	StatusScheduled Status = "scheduled"
	StatusSending   Status = "sending"
	StatusPaused    Status = "paused"
	StatusCompleted Status = "completed"
	StatusCancelled Status = "cancelled"
)

// Statuses lists every broadcast status in lifecycle order.
var Statuses = []Status{StatusPending, StatusScheduled, StatusSending, StatusPaused, StatusCompleted, StatusCancelled}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if s == v {
			return true
		}
	}
	return false
}

// Action is an operator action on a broadcast.
type Action string

// Operator actions.
const (
	ActionSend     Action = "send"
	ActionSchedule Action = "schedule"
	ActionPause    Action = "pause"
	ActionResume   Action = "resume"
	ActionCancel   Action = "cancel"
	ActionDelete   Action = "delete"
	// ActionValidity sets the validity period of a broadcast that has not
	// started; the status does not change.
	ActionValidity Action = "validity"
)

// Transition returns the status a broadcast in status s moves to when action
// a is taken, or an ECONFLICT error when a is not allowed in s. Deletion
// returns s itself: the broadcast is removed, not moved.
func Transition(s Status, a Action) (Status, error) {
	switch a {
	case ActionSend:
		if s == StatusPending || s == StatusScheduled {
			return StatusSending, nil
		}
	case ActionSchedule:
		if s == StatusPending || s == StatusScheduled {
			return StatusScheduled, nil
		}
	case ActionDelete, ActionValidity:
		if s == StatusPending || s == StatusScheduled {
			return s, nil
		}
	case ActionPause:
		if s == StatusSending {
			return StatusPaused, nil
		}
	case ActionResume:
		if s == StatusPaused {
			return StatusSending, nil
		}
	case ActionCancel:
		if s == StatusPaused {
			return StatusCancelled, nil
		}
	default:
		return s, Errorf(EINVALID, "Unknown action %q.", a)
	}
	return s, NotAllowed(a, s)
}

// NotAllowed is the ECONFLICT error of action a refused in status s.
func NotAllowed(a Action, s Status) error {
	if a == ActionValidity {
		return Errorf(ECONFLICT, "Cannot change the validity of a broadcast that is %s: it has started.", s)
	}
	return Errorf(ECONFLICT, "Cannot %s a broadcast that is %s.", a, s)
}

// Allowed reports whether action a is allowed in status s.
func Allowed(s Status, a Action) bool {
	_, err := Transition(s, a)
	return err == nil
}

// Broadcast is one uploaded file turned into a set of messages.
type Broadcast struct {
	ID       uint64 `json:"id"`
	Name     string `json:"name"`
	FileName string `json:"file_name"`
	Sender   string `json:"sender"`
	Status   Status `json:"status"`
	// UploadID is the upload the broadcast came from.
	UploadID uint64 `json:"upload_id"`
	// Charset is "UTF-8" or "Windows-1252" (the file was not valid UTF-8).
	Charset string `json:"charset"`
	// Notes are remarks made at ingest time, shown with the broadcast.
	Notes       []string  `json:"notes,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	ScheduledAt time.Time `json:"scheduled_at"`
	StartedAt   time.Time `json:"started_at"`
	CompletedAt time.Time `json:"completed_at"`
	// Validity is how long the SMSC may try to deliver each message
	// (submit_sm validity_period), MinValidity–MaxValidity; 0 (omitted)
	// means the configured default, smpp.validity. Set while the broadcast
	// is pending or scheduled, by a file column or an operator.
	Validity time.Duration `json:"validity,omitempty"`
	// TrackingBase is the Tracking ID of the first message; message i (from
	// 0) has Tracking ID TrackingBase+i. Bases are allocated from one
	// system-wide sequence, so Tracking IDs are unique and increasing.
	TrackingBase uint64 `json:"tracking_base"`
	// Segments is the sum of the segments of every message.
	Segments int64  `json:"segments"`
	Counts   Counts `json:"counts"`
	// Wait says why a sending broadcast is not moving (outside the send
	// window, SMSC unbound); empty when it is not waiting.
	Wait string `json:"wait,omitempty"`
}

// Counts are the live message counts of a broadcast (SPEC §7).
type Counts struct {
	Total     int64 `json:"total"`
	Invalid   int64 `json:"invalid"`
	Duplicate int64 `json:"duplicate"`
	Queued    int64 `json:"queued"`
	Submitted int64 `json:"submitted"`
	Delivered int64 `json:"delivered"`
	Failed    int64 `json:"failed"`
	Unknown   int64 `json:"unknown"`
	Cancelled int64 `json:"cancelled"`
	// OptedOut counts rows skipped at ingest because the number was on the
	// suppression list; Suppressed, messages settled unsent because the
	// number opted out after ingest (SPEC §11).
	OptedOut   int64 `json:"opted_out"`
	Suppressed int64 `json:"suppressed"`
}

// Settled returns the number of messages with a final status.
func (c Counts) Settled() int64 { return c.Delivered + c.Failed + c.Unknown }

// Add moves one message from the count of state from to the count of state
// to. Use "" as from for a new message.
func (c *Counts) Add(from, to MessageState) {
	if p := c.field(from); p != nil {
		*p--
	}
	if p := c.field(to); p != nil {
		*p++
	}
}

func (c *Counts) field(s MessageState) *int64 {
	switch s {
	case StateQueued:
		return &c.Queued
	case StateSubmitted:
		return &c.Submitted
	case StateCancelled:
		return &c.Cancelled
	case StateSuppressed:
		return &c.Suppressed
	case StateDelivered:
		return &c.Delivered
	case StateUndeliverable, StateExpired, StateDeleted, StateRejected:
		return &c.Failed
	case StateUnknown, StateAccepted:
		return &c.Unknown
	}
	return nil
}

// BroadcastFilter selects broadcasts for Broadcasts.
type BroadcastFilter struct {
	Status Status // empty: all
	Offset int
	Limit  int // 0: all
}
