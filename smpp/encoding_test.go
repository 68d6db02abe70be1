package smpp

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"campaignd"
)

func TestSegments(t *testing.T) {
	a := strings.Repeat
	tests := []struct {
		name     string
		text     string
		encoding string
		length   int
		parts    int
	}{
		{"empty", "", EncodingGSM7, 0, 1},
		{"ascii", "Hello, world!", EncodingGSM7, 13, 1},
		{"e acute n tilde u umlaut stay GSM-7", "é ñ ü É Ñ Ü à è ì ò ù", EncodingGSM7, 21, 1},
		{"a acute forces UCS-2", "á", EncodingUCS2, 1, 1},
		{"i acute forces UCS-2", "sí", EncodingUCS2, 2, 1},
		{"o acute forces UCS-2", "canción", EncodingUCS2, 7, 1},
		{"u acute forces UCS-2", "ú", EncodingUCS2, 1, 1},
		{"extension chars count 2", "€{}[]~|^\\", EncodingGSM7, 18, 1},
		{"form feed is an extension char", "\f", EncodingGSM7, 2, 1},
		{"160 septets fit one SMS", a("a", 160), EncodingGSM7, 160, 1},
		{"161 septets need two", a("a", 161), EncodingGSM7, 161, 2},
		{"159 plus euro is 161 septets", a("a", 159) + "€", EncodingGSM7, 161, 2},
		{"158 plus euro is 160 septets", a("a", 158) + "€", EncodingGSM7, 160, 1},
		{"two full parts", a("a", 306), EncodingGSM7, 306, 2},
		{"one more septet, third part", a("a", 307), EncodingGSM7, 307, 3},
		{"escape pair not split at 153", a("a", 152) + "€" + a("a", 152), EncodingGSM7, 306, 3},
		{"70 units fit one SMS", a("á", 70), EncodingUCS2, 70, 1},
		{"71 units need two", a("á", 71), EncodingUCS2, 71, 2},
		{"two full UCS-2 parts", a("á", 134), EncodingUCS2, 134, 2},
		{"third UCS-2 part", a("á", 135), EncodingUCS2, 135, 3},
		{"emoji is two units", "😀", EncodingUCS2, 2, 1},
		{"surrogate pair not split at 67", a("á", 66) + "😀" + a("á", 66), EncodingUCS2, 134, 3},
		{"cyrillic", "Привет", EncodingUCS2, 6, 1},
		{"tab is not GSM-7", "a\tb", EncodingUCS2, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, n, parts := Segments(tt.text)
			if enc != tt.encoding || n != tt.length || parts != tt.parts {
				t.Fatalf("Segments = %s, %d, %d; want %s, %d, %d", enc, n, parts, tt.encoding, tt.length, tt.parts)
			}
		})
	}
}

func TestSplitGSM7KeepsEscapePairs(t *testing.T) {
	for pad := 140; pad < 160; pad++ {
		text := strings.Repeat("a", pad) + strings.Repeat("€", 20)
		parts := splitGSM7(text)
		var joined []byte
		for i, p := range parts {
			if len(p) > gsmPart {
				t.Fatalf("pad %d: part %d has %d septets", pad, i, len(p))
			}
			if p[len(p)-1] == gsmEscape {
				t.Fatalf("pad %d: part %d ends with an escape", pad, i)
			}
			if decodeGSM7(p) == "" {
				t.Fatalf("pad %d: part %d empty", pad, i)
			}
			joined = append(joined, p...)
		}
		if got := decodeGSM7(joined); got != text {
			t.Fatalf("pad %d: round trip lost text", pad)
		}
	}
}

func TestSplitUCS2KeepsSurrogatePairs(t *testing.T) {
	for pad := 60; pad < 70; pad++ {
		text := strings.Repeat("á", pad) + strings.Repeat("😀", 30)
		var all []byte
		for i, p := range splitUCS2(text) {
			if len(p) > 2*ucs2Part {
				t.Fatalf("pad %d: part %d has %d octets", pad, i, len(p))
			}
			if !utf8.ValidString(decodeUCS2(p)) || strings.ContainsRune(decodeUCS2(p), utf8.RuneError) {
				t.Fatalf("pad %d: part %d splits a surrogate pair", pad, i)
			}
			all = append(all, p...)
		}
		if decodeUCS2(all) != text {
			t.Fatalf("pad %d: round trip lost text", pad)
		}
	}
}

func TestGSM7RoundTrip(t *testing.T) {
	var b strings.Builder
	for i, r := range gsmBasic {
		if i != gsmEscape {
			b.WriteRune(r)
		}
	}
	for r := range gsmExtension {
		b.WriteRune(r)
	}
	text := b.String()
	if !isGSM7(text) {
		t.Fatal("the whole GSM 03.38 repertoire is not GSM-7")
	}
	enc := encodeGSM7(text)
	if bytes.IndexByte(enc, 0x80) >= 0 {
		t.Fatal("septet above 0x7F")
	}
	if got := decodeGSM7(enc); got != text {
		t.Fatalf("round trip: got %q want %q", got, text)
	}
}

func TestRelativeValidity(t *testing.T) {
	tests := []struct {
		name string
		d    string
		want string
	}{
		{"zero leaves the SMSC default", "0s", ""},
		{"ten minutes", "10m", "000000001000000R"},
		{"48 hours", "48h", "000002000000000R"},
		{"15 days", "360h", "000015000000000R"},
		{"mixed", "25h1m1s", "000001010101000R"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustDuration(t, tt.d)
			if got := relativeValidity(d); got != tt.want {
				t.Fatalf("relativeValidity(%s) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

func TestSegmentsAgreesWithRoot(t *testing.T) {
	a := strings.Repeat
	texts := []string{"", "plain", "`grave`", "@$_", a("a", 152) + "€" + a("a", 200), a("á", 66) + "😀" + a("á", 80),
		a("{", 80), a("{", 81), a("x", 1000), "Ελληνικά ΔΦΓ", "ΔΦΓΛΩΠΨΣΘΞ", a("€", 77) + "a", a("é", 161)}
	for _, text := range texts {
		e1, n1, p1 := Segments(text)
		e2, n2, p2 := campaignd.AnalyzeText(text)
		if e1 != e2 || n1 != n2 || p1 != p2 {
			t.Errorf("%.20q: smpp %s %d %d, campaignd %s %d %d", text, e1, n1, p1, e2, n2, p2)
		}
	}
}
