package ingest

import (
	"strconv"
	"unicode/utf8"

	"campaignd"
)

// Bounds on what a file can make campaignd write about it (SPEC §3): a
// column name or value quoted in an error is cut, and a message quoting the
// file is cut too, so that an error line is small whatever the file holds.
const (
	maxErrorTextLen    = 200  // characters of a column name or value in an error
	maxErrorMessageLen = 1000 // characters of an error message
)

// clip cuts s to at most n characters, ending it with "…" when cut. It
// never splits a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i, count := 0, 0
	for i < len(s) && count < n {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		count++
	}
	if i >= len(s) {
		return s
	}
	return s[:i] + "…"
}

// clipError bounds the user-supplied parts of an error line.
func clipError(e campaignd.FileError) campaignd.FileError {
	e.Column = clip(e.Column, maxErrorTextLen)
	e.Value = clip(e.Value, maxErrorTextLen)
	e.Error = clip(e.Error, maxErrorMessageLen)
	return e
}

// maxTextBytes is a length in bytes past which a message certainly needs
// more than maxSegments segments, so expansion can stop there: within
// maxSegments a GSM-7 text has at most 160 septets a segment and 2 bytes of
// UTF-8 a septet (é, ñ: 2 bytes, 1 septet; €: 3 bytes, 2 septets), a UCS-2
// text 70 units a segment and at most 3 bytes a unit.
func maxTextBytes(maxSegments int) int { return 2 * 160 * maxSegments }

// segmentChars says how long a message of maxSegments segments may be.
func segmentChars(maxSegments int) string {
	gsm, ucs := 160, 70
	if maxSegments > 1 {
		gsm, ucs = 153*maxSegments, 67*maxSegments
	}
	return strconv.Itoa(gsm) + " GSM-7 or " + strconv.Itoa(ucs) + " UCS-2 characters"
}

// Sender rules (SPEC §3): what an SMSC accepts as a source address.
const (
	maxNumericSender = 15 // digits of a numeric short code or number
	maxAlphaSender   = 11 // GSM-7 characters of an alphanumeric sender
)

// CheckSender returns "" when s is a valid sender — a numeric short code of
// at most 15 digits, or at most 11 GSM-7 characters — else what is wrong
// with it, naming the rule.
func CheckSender(s string) string {
	if s == "" {
		return "empty sender: use a numeric short code (at most 15 digits) or an alphanumeric sender (at most 11 GSM-7 characters)"
	}
	digits := true
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			digits = false
			break
		}
	}
	if digits {
		if len(s) > maxNumericSender {
			return "sender \"" + clip(s, maxErrorTextLen) + "\" has " + strconv.Itoa(len(s)) + " digits: a numeric sender has at most 15"
		}
		return ""
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return "sender \"" + clip(s, maxErrorTextLen) + "\" contains a control character: an alphanumeric sender has at most 11 GSM-7 characters"
		}
	}
	enc, units, _ := campaignd.AnalyzeText(s)
	if enc != campaignd.EncodingGSM7 {
		return "sender \"" + clip(s, maxErrorTextLen) + "\" has characters outside GSM-7: an alphanumeric sender has at most 11 GSM-7 characters (no accents but é, è, ñ, ü…)"
	}
	if units > maxAlphaSender {
		return "sender \"" + clip(s, maxErrorTextLen) + "\" is " + strconv.Itoa(units) + " GSM-7 characters long: an alphanumeric sender has at most 11 (a numeric short code at most 15 digits)"
	}
	return ""
}
