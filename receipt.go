package campaignd

import "time"

// Receipt is a delivery receipt as the SMSC reported it: the SMPP client
// parses it, the engine settles the message part it names.
type Receipt struct {
	MessageID string    // as the SMSC wrote it, normalised (case, leading zeros)
	Stat      string    // DELIVRD, UNDELIV, EXPIRED, DELETED, REJECTD, ACCEPTD, UNKNOWN (or ENROUTE); others are ignored
	Err       string    // the text's err: field, else the network_error_code TLV as "type:code"; "" if neither
	DoneAt    time.Time // the text's done date (YYMMDDhhmm[ss]) read as UTC; zero if absent or malformed
	Raw       string    // the receipt text as received
}
