package ingest

import (
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// maxRecipientDigits bounds the digits of a recipient; E.164 numbers have
// at most 15, the longest Mexican form (0052 + 10) has 14.
const maxRecipientDigits = 15

// recipientRules normalises recipients (SPEC §3). Mexican numbers are
// always accepted, in exactly the listed forms; numbers of other countries
// only when their region is in allowed, written with a leading '+'.
type recipientRules struct {
	allowed map[string]bool // upper-case region codes, never "MX"
}

func newRecipientRules(countries []string) *recipientRules {
	rr := &recipientRules{allowed: make(map[string]bool)}
	for _, c := range countries {
		c = strings.ToUpper(strings.TrimSpace(c))
		// Mexico is handled by the fixed rules below: listing "MX" must not
		// make other Mexican forms (e.g. +521…) valid through phonenumbers.
		if c != "" && c != "MX" {
			rr.allowed[c] = true
		}
	}
	return rr
}

// normalize returns the normalised recipient appended to dst — "52" and
// ten digits for Mexico, the E.164 digits without '+' for an allowed
// country — and the same digits as an integer, a compact key for duplicate
// detection (E.164 numbers never start with 0, so the integer is unique).
// Spaces, '-', '.', '(' and ')' are ignored; anything else but digits and
// one leading '+' makes the number invalid.
func (rr *recipientRules) normalize(dst []byte, raw string) ([]byte, uint64, bool) {
	var d [maxRecipientDigits]byte
	n, plus := 0, false
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c >= '0' && c <= '9':
			if n == len(d) {
				return dst, 0, false
			}
			d[n] = c
			n++
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		case c == '+' && n == 0 && !plus:
			plus = true
		default:
			return dst, 0, false
		}
	}
	digits := d[:n]
	var national []byte // the ten Mexican digits, when the form is one of ours
	switch {
	case plus:
		if n >= 2 && digits[0] == '5' && digits[1] == '2' {
			if n != 12 {
				return dst, 0, false // +52 is Mexico: only +52 + 10 digits
			}
			national = digits[2:]
		} else {
			return rr.foreign(dst, digits)
		}
	case n == 10:
		national = digits
	case n == 12 && hasPrefix(digits, "52"):
		national = digits[2:]
	case n == 13 && (hasPrefix(digits, "521") || hasPrefix(digits, "044") || hasPrefix(digits, "045")):
		national = digits[3:]
	case n == 14 && hasPrefix(digits, "0052"):
		national = digits[4:]
	default:
		return dst, 0, false
	}
	dst = append(dst, '5', '2')
	dst = append(dst, national...)
	return dst, digitsValue(dst[len(dst)-12:]), true
}

// foreign checks a '+' number of another country against the allowed
// regions with phonenumbers; it is off the hot path.
func (rr *recipientRules) foreign(dst, digits []byte) ([]byte, uint64, bool) {
	if len(rr.allowed) == 0 || len(digits) < 4 || digits[0] == '0' {
		return dst, 0, false
	}
	num, err := phonenumbers.Parse("+"+string(digits), "")
	if err != nil {
		return dst, 0, false
	}
	region := phonenumbers.GetRegionCodeForNumber(num)
	if !rr.allowed[region] || !phonenumbers.IsValidNumberForRegion(num, region) {
		return dst, 0, false
	}
	e164 := phonenumbers.Format(num, phonenumbers.E164) // "+" and at most 15 digits
	start := len(dst)
	dst = append(dst, e164[1:]...)
	return dst, digitsValue(dst[start:]), true
}

func hasPrefix(b []byte, p string) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == p
}

func digitsValue(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v*10 + uint64(c-'0')
	}
	return v
}
