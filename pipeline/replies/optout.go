package replies

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// MatchKeyword returns the keyword of keywords that text opts out with, or
// "". A keyword matches when it is the whole reply or its first word(s);
// case, accents, punctuation and spacing do not matter, so "baja", " Baja.",
// "BAJA por favor", "no más" and "NOMAS" all match their keyword, while
// "bajar" or "stopped" do not.
func MatchKeyword(text string, keywords []string) string {
	words := foldWords(text)
	if len(words) == 0 {
		return ""
	}
	for _, kw := range keywords {
		k := strings.Join(foldWords(kw), "")
		if k == "" {
			continue
		}
		joined := ""
		for _, w := range words {
			joined += w
			if joined == k {
				return kw
			}
			if len(joined) >= len(k) {
				break
			}
		}
	}
	return ""
}

// foldWords splits s into words of letters and digits, upper-cased and
// without accents.
func foldWords(s string) []string {
	var words []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			words = append(words, cur.String())
			cur.Reset()
		}
	}
	for _, r := range norm.NFKD.String(s) { // K: full-width and other compatibility forms fold too
		switch {
		case unicode.Is(unicode.Mn, r):
			// a combining accent: dropped
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			cur.WriteRune(unicode.ToUpper(r))
		default:
			flush()
		}
	}
	flush()
	return words
}
