package smpp

import (
	"strconv"
	"strings"
	"time"

	"campaignd"
)

// Receipt stats: the final states a delivery receipt reports, as in the SMPP 3.4 Appendix B text.
// ENROUTE is not final and only appears when an SMSC sends intermediate notifications.
const (
	StatDelivered   = "DELIVRD"
	StatUndelivered = "UNDELIV"
	StatExpired     = "EXPIRED"
	StatDeleted     = "DELETED"
	StatRejected    = "REJECTD"
	StatAccepted    = "ACCEPTD"
	StatUnknown     = "UNKNOWN"
	StatEnroute     = "ENROUTE"
)

// TLV tags read from delivery receipts.
const (
	TagReceiptedMessageID uint16 = 0x001E
	TagNetworkErrorCode   uint16 = 0x0423
	TagMessagePayload     uint16 = 0x0424
	TagMessageState       uint16 = 0x0427
)

// TLV is one optional parameter of a PDU, as handed to ParseReceipt.
type TLV struct {
	Tag   uint16
	Value []byte
}

// messageStates maps the message_state TLV (SMPP 3.4 §5.2.28) to receipt stats.
var messageStates = map[byte]string{
	1: StatEnroute,
	2: StatDelivered,
	3: StatExpired,
	4: StatDeleted,
	5: StatUndelivered,
	6: StatAccepted,
	7: StatUnknown,
	8: StatRejected,
}

// statWords maps the stat: words seen in receipt texts, long forms included, to receipt stats.
var statWords = map[string]string{
	"DELIVRD": StatDelivered, "DELIVERED": StatDelivered,
	"UNDELIV": StatUndelivered, "UNDELIVERABLE": StatUndelivered, "UNDELIVERED": StatUndelivered,
	"EXPIRED": StatExpired,
	"DELETED": StatDeleted,
	"REJECTD": StatRejected, "REJECTED": StatRejected,
	"ACCEPTD": StatAccepted, "ACCEPTED": StatAccepted,
	"UNKNOWN": StatUnknown,
	"ENROUTE": StatEnroute,
}

// stateCodes is messageStates reversed, for the simulator.
var stateCodes = func() map[string]byte {
	m := make(map[string]byte, len(messageStates))
	for k, v := range messageStates {
		m[v] = k
	}
	return m
}()

// ParseReceipt reads a delivery receipt from the short message text and the deliver_sm's TLVs. The id
// comes from the receipted_message_id TLV when present, else from the text's "id:"; the stat from the
// message_state TLV when present, else from the text's "stat:" (unrecognised words become UNKNOWN).
// ok is false when no id or no stat can be found. The text's fields are matched case-insensitively and
// only before its "text:" field, so a message body cannot forge them.
func ParseReceipt(short string, tlvs ...TLV) (r campaignd.Receipt, ok bool) {
	r.Raw = short
	fields := receiptFields(short)

	var tlvID, tlvState string
	var haveState bool
	for _, t := range tlvs {
		switch t.Tag {
		case TagReceiptedMessageID:
			tlvID = strings.TrimRight(string(t.Value), "\x00")
		case TagMessageState:
			if len(t.Value) == 1 {
				if s, known := messageStates[t.Value[0]]; known {
					tlvState, haveState = s, true
				}
			}
		case TagNetworkErrorCode:
			if len(t.Value) == 3 && fields["err"] == "" {
				r.Err = strconv.Itoa(int(t.Value[0])) + ":" + strconv.Itoa(int(t.Value[1])<<8|int(t.Value[2]))
			}
		}
	}

	r.MessageID = NormalizeID(tlvID)
	if r.MessageID == "" {
		r.MessageID = NormalizeID(fields["id"])
	}
	if haveState {
		r.Stat = tlvState
	} else if w := fields["stat"]; w != "" {
		r.Stat = statWords[strings.ToUpper(w)]
		if r.Stat == "" {
			r.Stat = StatUnknown
		}
	}
	if e := fields["err"]; e != "" {
		r.Err = e
	}
	r.DoneAt = parseReceiptDate(fields["done date"])
	return r, r.MessageID != "" && r.Stat != ""
}

// receiptKeys are the receipt text's fields in their usual order; "text" ends the parsed part.
var receiptKeys = []string{"id", "sub", "dlvrd", "submit date", "done date", "stat", "err"}

// receiptFields splits "id:X sub:001 ... err:000 text:..." into lower-case keys and their values.
// Each value is the first space-free word after its key.
func receiptFields(s string) map[string]string {
	lower := asciiLower(s) // same length as s, so indexes carry over
	if i := keyIndex(lower, "text"); i >= 0 {
		lower, s = lower[:i], s[:i]
	}
	fields := make(map[string]string, len(receiptKeys))
	for _, k := range receiptKeys {
		i := keyIndex(lower, k)
		if i < 0 {
			continue
		}
		v := strings.TrimLeft(s[i+len(k)+1:], " ")
		if j := strings.IndexAny(v, " \t\r\n"); j >= 0 {
			v = v[:j]
		}
		fields[k] = v
	}
	return fields
}

// asciiLower lower-cases A–Z only; unlike strings.ToLower it never changes the length of s.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// keyIndex finds "key:" at the start of s or after whitespace, so "id:" does not match "msgid:".
func keyIndex(s, key string) int {
	needle := key + ":"
	for off := 0; ; {
		i := strings.Index(s[off:], needle)
		if i < 0 {
			return -1
		}
		i += off
		if i == 0 || s[i-1] == ' ' || s[i-1] == '\t' || s[i-1] == '\n' || s[i-1] == '\r' {
			return i
		}
		off = i + 1
	}
}

// parseReceiptDate reads YYMMDDhhmm or YYMMDDhhmmss as UTC; the SMSC's zone is not in the receipt.
func parseReceiptDate(v string) time.Time {
	var layout string
	switch len(v) {
	case 10:
		layout = "0601021504"
	case 12:
		layout = "060102150405"
	default:
		return time.Time{}
	}
	t, err := time.ParseInLocation(layout, v, time.UTC)
	if err != nil {
		return time.Time{}
	}
	return t
}

// NormalizeID returns an SMSC message id in the only form free of any
// assumption about the SMSC (campaignd.CanonicalID): surrounding spaces and
// NULs dropped, lower-cased, and without leading zeros when it is all
// hexadecimal digits ("0000012345" → "12345", "00A3" → "a3"). It never
// converts between bases: whether a receipt's "1000" is the submit_sm_resp's
// "3E8" is for the configured smpp.message_id_format to say.
func NormalizeID(id string) string { return campaignd.CanonicalID(id) }
