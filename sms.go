package campaignd

import "unicode/utf8"

// SMS encodings, as stored on a Row and mapped to SMPP data_coding by the
// sender (GSM-7 = 0, UCS-2 = 8).
const (
	EncodingGSM7 = "GSM-7"
	EncodingUCS2 = "UCS-2"
)

// Segment sizes (SPEC §3): a single message or one part of a concatenated
// message, whose user data header takes room from the text.
const (
	gsm7Single = 160
	gsm7Part   = 153
	ucs2Single = 70
	ucs2Part   = 67
)

// gsmASCII classifies the ASCII characters: 1 is in the GSM 03.38 default
// alphabet (one septet), 2 is in its extension table (escape + character,
// two septets), 0 does not fit GSM-7.
var gsmASCII = func() (t [utf8.RuneSelf]uint8) {
	for c := ' '; c <= '~'; c++ {
		t[c] = 1
	}
	t['\n'], t['\r'] = 1, 1
	t['\f'] = 2
	for _, c := range "^{}\\[~]|" {
		t[c] = 2
	}
	t['`'] = 0 // the grave accent is not in the GSM alphabet
	return t
}()

// gsmSeptets returns how many septets r takes in GSM-7: 1 (default
// alphabet), 2 (extension table) or 0 (does not fit).
func gsmSeptets(r rune) int {
	if r < utf8.RuneSelf {
		return int(gsmASCII[r])
	}
	switch r {
	case '£', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', 'Ø', 'ø', 'Å', 'å',
		'Δ', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', 'Æ', 'æ', 'ß', 'É',
		'¤', '¡', 'Ä', 'Ö', 'Ñ', 'Ü', '§', '¿', 'ä', 'ö', 'ñ', 'ü', 'à':
		return 1
	case '€':
		return 2
	}
	return 0
}

// AnalyzeText reports how text is sent as SMS: its encoding ("GSM-7" when
// every character is in the GSM 03.38 default alphabet or its extension
// table, else "UCS-2"), its length in encoding units (septets, an extension
// character counting 2; or UTF-16 code units, a character outside the BMP
// counting 2) and the number of segments: one up to 160 septets / 70 units,
// else parts of 153 / 67. A part never splits an escape sequence or a
// surrogate pair, so a long text may need one part more than units/153.
// The empty text is one (empty) segment.
func AnalyzeText(text string) (encoding string, units int, segments int) {
	gsm := true
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c >= utf8.RuneSelf {
			gsm = false
			break
		}
		if gsmASCII[c] == 0 {
			return analyzeUCS2(text)
		}
		units += int(gsmASCII[c])
	}
	if !gsm {
		units = 0
		for _, r := range text {
			n := gsmSeptets(r)
			if n == 0 {
				return analyzeUCS2(text)
			}
			units += n
		}
	}
	if units <= gsm7Single {
		return EncodingGSM7, units, 1
	}
	segments, part := 1, 0
	for _, r := range text {
		n := gsmSeptets(r)
		if part+n > gsm7Part {
			segments, part = segments+1, 0
		}
		part += n
	}
	return EncodingGSM7, units, segments
}

func analyzeUCS2(text string) (string, int, int) {
	units := 0
	for _, r := range text {
		units += ucs2Units(r)
	}
	if units <= ucs2Single {
		return EncodingUCS2, units, 1
	}
	segments, part := 1, 0
	for _, r := range text {
		n := ucs2Units(r)
		if part+n > ucs2Part {
			segments, part = segments+1, 0
		}
		part += n
	}
	return EncodingUCS2, units, segments
}

func ucs2Units(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}
