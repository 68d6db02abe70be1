// Package campaignd holds the domain of the Campaign Manager for Payback
// Mexico's SMS broadcasts: broadcasts, messages, uploads, receipts and the
// rules that move them between states. It has no I/O and no dependencies;
// the adapters (ftpd, smpp, store, webui, metrics) and the work (pipeline)
// speak in these types, and only cmd/campaignd joins them.
package campaignd

import (
	"errors"
	"fmt"
)

// Error codes shared by every transport. They are mapped to HTTP statuses in
// webui and to FTP replies in ftpd, each in one place.
const (
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	ECONFLICT     = "conflict"
	EUNAUTHORIZED = "unauthorized"
	EFORBIDDEN    = "forbidden"
	EINTERNAL     = "internal"
)

// Error is an error meant to be shown to a user: its Message is safe to
// print, its Code says which kind of failure it is.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("campaignd: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it wraps an *Error, EINTERNAL for any
// other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of err. Internal errors get a
// generic text so that no internals leak to users.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
