package webui

import (
	"strings"
	"unicode/utf8"

	"campaignd"
)

// explain turns a row error into a reason its author can act on, in the
// user's language: the stable kind ingest wrote, and why, read from the
// value (the rules are those of pipeline/recipient.go).
func (l *locale) explain(e campaignd.FileError) string {
	kind := l.Msg(e.Error)
	var why string
	switch e.Error {
	case campaignd.RowInvalidRecipient:
		why = l.recipientReason(e.Value)
	case campaignd.RowDuplicate:
		why = l.T("the same number is on an earlier line; each number is sent once")
	case campaignd.RowEmptyMessage:
		why = l.T("the message cell is empty")
	case campaignd.RowOptedOut:
		why = l.T("the number is on the opt-out list")
	}
	if why == "" {
		return kind
	}
	return kind + ": " + why
}

func (l *locale) recipientReason(raw string) string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return l.T("the cell is empty")
	}
	n, plus := 0, false
	for i, c := range raw {
		switch {
		case c >= '0' && c <= '9':
			n++
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		case c == '+' && n == 0 && !plus:
			plus = true
		default:
			if i == 0 && c == '\'' {
				continue
			}
			r, _ := utf8.DecodeRuneInString(raw[i:])
			return l.T("it contains “%s”: write only digits (spaces, dashes, dots and parentheses may separate them)", string(r))
		}
	}
	digits := strings.Map(func(c rune) rune {
		if c >= '0' && c <= '9' {
			return c
		}
		return -1
	}, raw)
	switch {
	case plus && strings.HasPrefix(digits, "52"):
		return l.T("+52 must be followed by 10 digits, not %d", n-2)
	case plus:
		return l.T("a number outside Mexico (+%s): its country is not allowed, or the number is not valid there", digits[:min(3, len(digits))])
	case n < 10:
		return l.T("%d-digit number: 10 are expected", n)
	case n > 10:
		return l.T("%d-digit number: 10 are expected, or 52 and 10", n)
	}
	return l.T("not a Mexican mobile number")
}
