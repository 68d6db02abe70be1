package campaignd

import (
	"errors"
	"time"
)

// The words of the engine's batched write (the store's SaveChanges): what
// it is asked to apply and what it reports back.

// Receipt outcomes, as the store reports them (ChangeResult.Receipts).
const (
	ReceiptMatched   = "matched"   // applied to a submitted message
	ReceiptEarly     = "early"     // its id is not recorded yet: held under mr/
	ReceiptDuplicate = "duplicate" // its part already had a status, or the message was final
	// ReceiptHeld: the receipt matches more than one message in the forms
	// auto allows, or auto has not learned the SMSC's scheme yet; it is held
	// under mr/ and applied once the scheme is known.
	ReceiptHeld = "held"
	// ReceiptUnmatched: the receipt's id was given to more than one part
	// awaiting a receipt (a collision); it is dropped, never guessed.
	ReceiptUnmatched = "unmatched"
)

// ReceiptIn is one delivery receipt to apply to the stored messages (the
// engine's form of a Receipt: its id canonical, its stat a state).
type ReceiptIn struct {
	ID   string // SMSC message id as the receipt gave it (CanonicalID is applied)
	Stat MessageState
	At   time.Time // when it was received: the settle time
}

// Settled is a message that reached a final (or cancelled) state in a
// SaveChanges call.
type Settled struct {
	BroadcastID uint64
	Index       uint32
	State       MessageState
}

// ChangeResult is what SaveChanges did.
type ChangeResult struct {
	Applied  []bool   // per change: false when the stored state was not From
	Receipts []string // per receipt: one of the Receipt outcomes
	// Settled lists the messages that became final or cancelled.
	Settled []Settled
	// Touched lists the broadcasts whose counts changed.
	Touched []uint64

	// Learned is the id scheme auto learned in this call ("" if none);
	// Scheme is the one known after it (IDFormatAuto: "" until learned).
	Learned, Scheme string
	// Collisions lists ids given to a part while another part awaiting a
	// receipt had them.
	Collisions []Collision
	// Unmatched counts held receipts dropped because their id is shared.
	Unmatched int
	// ResolveNext is where ResolveHeld stopped; nil when it went through.
	ResolveNext []byte
}

// Collision is a message id given to a part while another part awaiting a
// receipt already had it. Neither is settled by a receipt for that id.
type Collision struct {
	ID                 string
	OldBroadcast       uint64
	OldIndex           uint32
	NewBroadcast       uint64
	NewIndex           uint32
	OldPart, NewPart   int
	StillAwaitingOlder int // how many other parts awaiting a receipt share the id
}

// SaveOptions tune SaveChanges.
type SaveOptions struct {
	// DayOf gives the local day (YYYYMMDD) a settle time is indexed under.
	DayOf func(time.Time) string
	// MatchTTL is how long an mi/ key is kept; 0 keeps it forever.
	MatchTTL time.Duration

	// IDFormat is smpp.message_id_format (IDFormatAuto when empty).
	IDFormat string
	// ResolveHeld looks again at held receipts (mr/) from key ResolveFrom
	// on, once auto has learned the scheme; ChangeResult.ResolveNext says
	// where to go on.
	ResolveHeld bool
	ResolveFrom []byte
	// VoteBefore: while auto has not learned the SMSC's id scheme, held
	// receipts received before it vote during ResolveHeld. Leave receipts
	// time to have their submit_sm_resp recorded.
	VoteBefore time.Time
	// SettleBefore: while auto has not learned the scheme, a held receipt
	// received before it whose id, in every form, finds exactly one part
	// (awaiting or settled) is applied to that part during ResolveHeld.
	// By then every submit_sm_resp sent before the receipt is recorded, so
	// no other message can still claim it; without this, a first send too
	// small to teach auto the scheme would never settle. Zero: never.
	SettleBefore time.Time
}

// ErrStop, returned by the function an iteration calls, ends it without an
// error.
var ErrStop = errors.New("stop")
