package campaignd

import "time"

// MaxScheduleAhead is how far in the future a broadcast may be dated, in a
// file or by an operator. A year covers every real campaign calendar; past it
// a date is almost certainly a typo (9999-12-31), and far dates are not
// representable in every format campaignd writes (RFC 3339 JSON ends at year
// 9999 UTC).
const MaxScheduleAhead = 366 * 24 * time.Hour

// CheckHorizon returns an EINVALID error when t is more than
// MaxScheduleAhead after now.
func CheckHorizon(now, t time.Time) error {
	if t.Sub(now) > MaxScheduleAhead {
		return Errorf(EINVALID, "The date %s is more than a year ahead.", t.Format("2006-01-02 15:04"))
	}
	return nil
}

// SafeCSV stops a spreadsheet from evaluating a field as a formula (CSV
// injection): a value starting with = @ TAB or CR, or with + or - that is not
// a plain number, gets a leading apostrophe. A plain number may carry the
// separators people write in phone numbers (space . - ( )), so -5, +52 55
// 1234 5678 and +5215512345678 stay as they are. Every CSV campaignd writes
// passes its user-supplied values through SafeCSV.
func SafeCSV(v string) string {
	if v == "" {
		return v
	}
	switch v[0] {
	case '=', '@', '\t', '\r':
		return "'" + v
	case '+', '-':
		if !plainNumber(v[1:]) {
			return "'" + v
		}
	}
	return v
}

// plainNumber reports whether s is digits, with at least one digit, and
// nothing else but phone separators.
func plainNumber(s string) bool {
	digits := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == ' ' || c == '.' || c == '-' || c == '(' || c == ')':
		default:
			return false
		}
	}
	return digits > 0
}
