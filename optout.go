package campaignd

import "time"

// Why a number is on the suppression list (Suppression.Reason).
const (
	SuppressReply    = "reply"    // the member answered with an opt-out keyword
	SuppressOperator = "operator" // an operator added it in the console
	SuppressImport   = "import"   // a bulk file (REPEP or another list) dropped over FTP
	SuppressAPI      = "api"      // added through the JSON API
)

// Suppression is one number that must not be messaged again (LFPDPPP,
// PROFECO's REPEP).
type Suppression struct {
	Number string    `json:"number"` // normalised, as messages are addressed
	Reason string    `json:"reason"`
	Source string    `json:"source,omitempty"` // the reply's text, the import file, a note
	At     time.Time `json:"at"`
	By     string    `json:"by,omitempty"` // user, upload or "sms"
}

// ValidSuppressReason reports whether r is a known reason.
func ValidSuppressReason(r string) bool {
	return r == SuppressReply || r == SuppressOperator || r == SuppressImport || r == SuppressAPI
}

// MO is a mobile-originated message: a reply from a member (deliver_sm
// without the receipt bit). Every MO is kept, keyword or not.
type MO struct {
	ID      uint64    `json:"id"`
	From    string    `json:"from"` // normalised when it is a valid number, else as received
	To      string    `json:"to"`
	Text    string    `json:"text"`
	At      time.Time `json:"at"`
	Keyword string    `json:"keyword,omitempty"` // the opt-out keyword matched, if any
}

// SuppressionSet is a read-only snapshot of the suppression list, for one
// ingest. Close it when done.
type SuppressionSet interface {
	// Has reports whether number (normalised digits) is on the list.
	Has(number []byte) (bool, error)
	Close()
}
