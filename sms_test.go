package campaignd_test

import (
	"strings"
	"testing"

	"campaignd"
)

func TestAnalyzeText(t *testing.T) {
	for _, tc := range []struct {
		name     string
		text     string
		encoding string
		units    int
		segments int
	}{
		{name: "empty", text: "", encoding: "GSM-7", units: 0, segments: 1},
		{name: "ascii", text: "Hola socio", encoding: "GSM-7", units: 10, segments: 1},
		{name: "gsm 160", text: strings.Repeat("a", 160), encoding: "GSM-7", units: 160, segments: 1},
		{name: "gsm 161", text: strings.Repeat("a", 161), encoding: "GSM-7", units: 161, segments: 2},
		{name: "gsm 306", text: strings.Repeat("a", 306), encoding: "GSM-7", units: 306, segments: 2},
		{name: "gsm 307", text: strings.Repeat("a", 307), encoding: "GSM-7", units: 307, segments: 3},
		{name: "gsm 918 is six parts", text: strings.Repeat("a", 918), encoding: "GSM-7", units: 918, segments: 6},
		{name: "spanish gsm letters", text: "é ñ ü Ñ Ü ¿¡", encoding: "GSM-7", units: 12, segments: 1},
		{name: "gsm specials", text: "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤§äöà\r\n", encoding: "GSM-7", units: 36, segments: 1},
		{name: "extension chars count two", text: "{}[]~|^\\€", encoding: "GSM-7", units: 18, segments: 1},
		{name: "form feed is extension", text: "a\fb", encoding: "GSM-7", units: 4, segments: 1},
		{name: "extension at 160", text: strings.Repeat("a", 158) + "€", encoding: "GSM-7", units: 160, segments: 1},
		{name: "extension at 161", text: strings.Repeat("a", 159) + "€", encoding: "GSM-7", units: 161, segments: 2},
		{name: "escape not split across parts", text: strings.Repeat("a", 152) + "€" + strings.Repeat("a", 152), encoding: "GSM-7", units: 306, segments: 3},
		{name: "a acute forces ucs2", text: "Canjéalos en línea", encoding: "UCS-2", units: 18, segments: 1},
		{name: "o acute", text: "ó", encoding: "UCS-2", units: 1, segments: 1},
		{name: "u acute", text: "ú", encoding: "UCS-2", units: 1, segments: 1},
		{name: "a acute", text: "á", encoding: "UCS-2", units: 1, segments: 1},
		{name: "backtick", text: "`", encoding: "UCS-2", units: 1, segments: 1},
		{name: "tab", text: "a\tb", encoding: "UCS-2", units: 3, segments: 1},
		{name: "ucs2 70", text: "á" + strings.Repeat("a", 69), encoding: "UCS-2", units: 70, segments: 1},
		{name: "ucs2 71", text: "á" + strings.Repeat("a", 70), encoding: "UCS-2", units: 71, segments: 2},
		{name: "ucs2 134", text: "á" + strings.Repeat("a", 133), encoding: "UCS-2", units: 134, segments: 2},
		{name: "ucs2 135", text: "á" + strings.Repeat("a", 134), encoding: "UCS-2", units: 135, segments: 3},
		{name: "emoji is a surrogate pair", text: "Hola 😀", encoding: "UCS-2", units: 7, segments: 1},
		{name: "emoji at 70", text: strings.Repeat("a", 68) + "😀", encoding: "UCS-2", units: 70, segments: 1},
		{name: "emoji at 71", text: strings.Repeat("a", 69) + "😀", encoding: "UCS-2", units: 71, segments: 2},
		{name: "surrogate pair not split", text: strings.Repeat("a", 66) + "😀" + strings.Repeat("a", 66), encoding: "UCS-2", units: 134, segments: 3},
		{name: "invalid utf8 byte", text: "a\xffb", encoding: "UCS-2", units: 3, segments: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc, units, segs := campaignd.AnalyzeText(tc.text)
			if enc != tc.encoding || units != tc.units || segs != tc.segments {
				t.Errorf("AnalyzeText(%q) = %s, %d, %d; want %s, %d, %d", tc.text, enc, units, segs, tc.encoding, tc.units, tc.segments)
			}
		})
	}
}

func BenchmarkAnalyzeText(b *testing.B) {
	text := "Hola socio, hoy tienes 120 puntos. Responde BAJA para no recibir mensajes"
	for b.Loop() {
		campaignd.AnalyzeText(text)
	}
}
