package campaignd

import "strings"

// Message id formats (smpp.message_id_format).
const (
	IDFormatAuto                    = "auto"
	IDFormatExact                   = "exact"
	IDFormatSubmitHexReceiptDecimal = "submit-hex-receipt-decimal"
	IDFormatSubmitDecimalReceiptHex = "submit-decimal-receipt-hex"
)

// IDFormats lists the valid message id formats.
var IDFormats = []string{IDFormatAuto, IDFormatExact, IDFormatSubmitHexReceiptDecimal, IDFormatSubmitDecimalReceiptHex}

// ValidIDFormat reports whether f is a message id format.
func ValidIDFormat(f string) bool {
	for _, v := range IDFormats {
		if f == v {
			return true
		}
	}
	return false
}

// CanonicalID trims an SMSC message id, lower-cases it and, when it is all
// hexadecimal digits, drops its leading zeros ("000" → "0").
func CanonicalID(id string) string {
	id = strings.Trim(id, " \t\r\n\x00")
	if id == "" {
		return ""
	}
	b := []byte(id)
	hex := true
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			b[i] = c + 'a' - 'A'
			if c > 'F' {
				hex = false
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		default:
			hex = false
		}
	}
	if hex {
		i := 0
		for i < len(b)-1 && b[i] == '0' {
			i++
		}
		b = b[i:]
	}
	return string(b)
}
