package campaignd

import (
	"errors"
	"fmt"
	"time"
)

// OutMessage is one SMS to submit: source address, destination and UTF-8
// text. The SMPP client splits it into parts.
type OutMessage struct {
	Source, Dest, Text string
	// NoReceipt asks for no delivery receipt (registered_delivery 0): for
	// a message tracked nowhere (an opt-out confirmation), whose receipt
	// would match nothing and, in auto mode, vote against the SMSC's id
	// scheme.
	NoReceipt bool
	// Validity is the message's validity period (its broadcast's); 0 is
	// the client's default (smpp.validity).
	Validity time.Duration
}

// Submit errors, as the SMPP client returns them and the engine decides on
// them. A failure at part k of a message comes with the ids of the parts
// before it.
var (
	// ErrSubmitTimeout means no response came in time: the SMSC may have
	// accepted the message. The engine submits it again (at-least-once).
	ErrSubmitTimeout = errors.New("campaignd: no submit response (outcome unknown)")
	// ErrNotBound means the session was lost (or the client closed) before
	// the response: the outcome is unknown as for ErrSubmitTimeout; the
	// engine waits for the bind and submits again.
	ErrNotBound = errors.New("campaignd: SMSC not bound (outcome unknown)")
)

// SubmitError is a submit refused by the SMSC with an SMPP command_status.
type SubmitError struct {
	Status uint32
	// Temporary: throttling (0x58), queue full (0x14), system error (0x08);
	// retried after a backoff up to MaxAttempts. Others are final: REJECTD.
	Temporary bool
}

// Error implements error.
func (e *SubmitError) Error() string {
	return fmt.Sprintf("campaignd: submit refused with status 0x%08X", e.Status)
}
