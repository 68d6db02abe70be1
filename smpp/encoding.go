package smpp

import (
	"unicode/utf16"

	"campaignd"
)

// Encoding names returned by Segments: the root package's, so rows and submits agree.
const (
	EncodingGSM7 = campaignd.EncodingGSM7
	EncodingUCS2 = campaignd.EncodingUCS2
)

// SMPP data_coding values used for outgoing messages.
const (
	codingGSM7 byte = 0x00 // SMSC default alphabet, sent unpacked (one septet per octet)
	codingUCS2 byte = 0x08
)

// Per-part limits. A concatenated part carries a 6-octet UDH (IEI 0x00, 8-bit reference), which costs
// 7 septets in GSM-7 and 3 UTF-16 units in UCS-2 once the SMSC packs the 140-octet user data.
const (
	gsmSingle  = 160
	gsmPart    = 153
	ucs2Single = 70
	ucs2Part   = 67
	maxParts   = 255 // the concatenation IE counts parts in one octet
	gsmEscape  = 0x1B
)

// gsmBasic is the GSM 03.38 default alphabet, indexed by septet. 0x1B is the escape to the extension
// table and never stands for a character of its own.
var gsmBasic = [128]rune{
	'@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
	'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', 0x1B, 'Æ', 'æ', 'ß', 'É',
	' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
	'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
	'¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
	'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
	'¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
	'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
}

// gsmExtension maps the characters of the GSM 03.38 extension table to the septet that follows the escape.
var gsmExtension = map[rune]byte{
	'\f': 0x0A, '^': 0x14, '{': 0x28, '}': 0x29, '\\': 0x2F,
	'[': 0x3C, '~': 0x3D, ']': 0x3E, '|': 0x40, '€': 0x65,
}

var (
	gsmFromRune    = map[rune]byte{}
	gsmExtFromByte = map[byte]rune{}
)

func init() {
	for i, r := range gsmBasic {
		if i != gsmEscape {
			gsmFromRune[r] = byte(i)
		}
	}
	for r, b := range gsmExtension {
		gsmExtFromByte[b] = r
	}
}

// gsmSeptets returns how many septets r takes in GSM-7 (1 or 2), or 0 when r is not in GSM 03.38.
func gsmSeptets(r rune) int {
	if r < 0x80 && r != gsmEscape && gsmBasic[r] == r {
		// Fast path: ASCII letters, digits and most punctuation sit at their own code point.
		return 1
	}
	if _, ok := gsmFromRune[r]; ok {
		return 1
	}
	if _, ok := gsmExtension[r]; ok {
		return 2
	}
	return 0
}

// isGSM7 reports whether every rune of text is in GSM 03.38 (default alphabet or extension table).
func isGSM7(text string) bool {
	for _, r := range text {
		if gsmSeptets(r) == 0 {
			return false
		}
	}
	return true
}

// Segments reports how text would be sent: its encoding ("GSM-7" or "UCS-2"), its length in GSM-7
// septets (extension characters count 2) or UTF-16 units, and the number of SMS parts. GSM-7 fits 160
// septets in one SMS and 153 per concatenated part, UCS-2 70 and 67 units; parts never split an escape
// pair or a surrogate pair, so the count can exceed a plain division. An empty text is one part.
func Segments(text string) (encoding string, septetsOrUnits int, parts int) {
	if isGSM7(text) {
		chunks := splitGSM7(text)
		n := 0
		for _, c := range chunks {
			n += len(c)
		}
		return EncodingGSM7, n, len(chunks)
	}
	chunks := splitUCS2(text)
	n := 0
	for _, c := range chunks {
		n += len(c) / 2
	}
	return EncodingUCS2, n, len(chunks)
}

// encodeGSM7 encodes text (which must pass isGSM7) as unpacked septets, one per octet.
func encodeGSM7(text string) []byte {
	out := make([]byte, 0, len(text))
	for _, r := range text {
		if b, ok := gsmFromRune[r]; ok {
			out = append(out, b)
		} else if b, ok := gsmExtension[r]; ok {
			out = append(out, gsmEscape, b)
		}
	}
	return out
}

// splitGSM7 encodes text as unpacked GSM-7 and cuts it into SMS payloads: one payload of at most 160
// septets, or parts of at most 153 that never end between an escape and its character.
func splitGSM7(text string) [][]byte {
	enc := encodeGSM7(text)
	if len(enc) <= gsmSingle {
		return [][]byte{enc}
	}
	var parts [][]byte
	for len(enc) > 0 {
		n := min(gsmPart, len(enc))
		if n < len(enc) && escapeEndsAt(enc[:n]) {
			n-- // keep the escape with the character it introduces
		}
		parts = append(parts, enc[:n:n])
		enc = enc[n:]
	}
	return parts
}

// escapeEndsAt reports whether b ends with an escape septet that starts a pair (rather than being the
// second half of one). Escape septets are only ever produced as pair starts by encodeGSM7, but an
// escaped character's second septet is never 0x1B, so a trailing 0x1B is always a pair start.
func escapeEndsAt(b []byte) bool {
	return len(b) > 0 && b[len(b)-1] == gsmEscape
}

// decodeGSM7 decodes unpacked GSM-7 septets; unknown escapes decode as a space, as 03.38 suggests.
func decodeGSM7(b []byte) string {
	out := make([]rune, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i] & 0x7F
		if c == gsmEscape && i+1 < len(b) {
			i++
			if r, ok := gsmExtFromByte[b[i]&0x7F]; ok {
				out = append(out, r)
			} else {
				out = append(out, ' ')
			}
			continue
		}
		if c == gsmEscape {
			out = append(out, ' ')
			continue
		}
		out = append(out, gsmBasic[c])
	}
	return string(out)
}

// splitUCS2 encodes text as big-endian UTF-16 and cuts it into SMS payloads: one of at most 70 units,
// or parts of at most 67 that never separate a surrogate pair.
func splitUCS2(text string) [][]byte {
	units := utf16.Encode([]rune(text))
	if len(units) <= ucs2Single {
		return [][]byte{unitsToBytes(units)}
	}
	var parts [][]byte
	for len(units) > 0 {
		n := min(ucs2Part, len(units))
		if n < len(units) && utf16.IsSurrogate(rune(units[n-1])) && units[n-1] < 0xDC00 {
			n-- // a high surrogate stays with its low surrogate
		}
		parts = append(parts, unitsToBytes(units[:n]))
		units = units[n:]
	}
	return parts
}

func unitsToBytes(units []uint16) []byte {
	b := make([]byte, 2*len(units))
	for i, u := range units {
		b[2*i] = byte(u >> 8)
		b[2*i+1] = byte(u)
	}
	return b
}

// decodeUCS2 decodes big-endian UTF-16; a trailing odd octet is dropped.
func decodeUCS2(b []byte) string {
	units := make([]uint16, len(b)/2)
	for i := range units {
		units[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	return string(utf16.Decode(units))
}

// encodeParts chooses the encoding for text and returns its data_coding and payloads.
func encodeParts(text string) (coding byte, parts [][]byte) {
	if isGSM7(text) {
		return codingGSM7, splitGSM7(text)
	}
	return codingUCS2, splitUCS2(text)
}

// concatUDH is the 6-octet user data header of a concatenated part: IEI 0x00 (8-bit reference).
func concatUDH(ref byte, total, seq int) []byte {
	return []byte{0x05, 0x00, 0x03, ref, byte(total), byte(seq)}
}
