package ingest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Charsets of an uploaded file, as noted on the broadcast.
const (
	CharsetUTF8        = "UTF-8"
	CharsetWindows1252 = "Windows-1252"
)

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// fileScan is what the first pass over a file learns: its size and hash,
// whether it is valid UTF-8, and where its first NUL byte is.
type fileScan struct {
	Size    int64
	SHA256  string
	UTF8    bool
	BOM     bool
	NULLine int // line of the first NUL byte; 0 when there is none
	Lines   int // number of line feeds, a bound on the number of rows
	TooBig  bool
}

// scanFile reads r once, hashing it, validating UTF-8 across chunk
// boundaries and counting lines, without holding more than one chunk. It
// stops early at a NUL byte or when the file exceeds limit (> 0).
func scanFile(r io.Reader, limit int64) (fileScan, error) {
	const chunk = 256 << 10
	var fs fileScan
	fs.UTF8 = true
	h := sha256.New()
	// buf[:4] holds the incomplete UTF-8 sequence at the end of the previous
	// chunk, so that a character split between two reads validates as one.
	buf := make([]byte, 4+chunk)
	carry := 0
	for first := true; ; first = false {
		n, err := io.ReadFull(r, buf[4:])
		data := buf[4 : 4+n]
		if n > 0 {
			if first && bytes.HasPrefix(data, utf8BOM) {
				fs.BOM = true
			}
			h.Write(data)
			fs.Size += int64(n)
			if limit > 0 && fs.Size > limit {
				fs.TooBig = true
				return fs, nil
			}
			if i := bytes.IndexByte(data, 0); i >= 0 {
				fs.NULLine = fs.Lines + bytes.Count(data[:i], []byte{'\n'}) + 1
				return fs, nil
			}
			fs.Lines += bytes.Count(data, []byte{'\n'})
			if fs.UTF8 {
				seq := buf[4-carry : 4+n]
				tail := incompleteTail(seq)
				if !utf8.Valid(seq[:len(seq)-tail]) {
					fs.UTF8 = false
				}
				carry = copy(buf[4-tail:4], seq[len(seq)-tail:])
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		} else if err != nil {
			return fs, err
		}
	}
	if carry > 0 {
		fs.UTF8 = false // the file ends inside a character
	}
	fs.SHA256 = hex.EncodeToString(h.Sum(nil))
	return fs, nil
}

// incompleteTail returns how many bytes at the end of b start a UTF-8
// sequence that b does not complete (0 to 3).
func incompleteTail(b []byte) int {
	for i := 1; i <= 3 && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < 0x80 {
			return 0
		}
		if utf8.RuneStart(c) {
			if utf8.FullRune(b[len(b)-i:]) {
				return 0
			}
			return i
		}
	}
	return 0
}

// textReader returns the file's text as UTF-8 without a BOM, decoding
// Windows-1252 when the first pass found invalid UTF-8, buffered so that
// the header line can be peeked at.
func textReader(r io.Reader, fs fileScan) *bufio.Reader {
	br := bufio.NewReaderSize(r, 64<<10)
	if fs.BOM {
		br.Discard(len(utf8BOM))
	}
	if fs.UTF8 {
		return br
	}
	return bufio.NewReaderSize(charmap.Windows1252.NewDecoder().Reader(br), 64<<10)
}

// detectDelimiter picks ',', ';' or TAB, whichever occurs most often
// outside quotes in the header line (',' on a tie or when none occurs).
func detectDelimiter(br *bufio.Reader) rune {
	head, _ := br.Peek(br.Size())
	var counts [3]int
	inQuote := false
loop:
	for _, c := range head {
		switch c {
		case '"':
			inQuote = !inQuote
		case '\n':
			if !inQuote {
				break loop
			}
		case ',':
			if !inQuote {
				counts[0]++
			}
		case ';':
			if !inQuote {
				counts[1]++
			}
		case '\t':
			if !inQuote {
				counts[2]++
			}
		}
	}
	best, delim := counts[0], ','
	if counts[1] > best {
		best, delim = counts[1], ';'
	}
	if counts[2] > best {
		delim = '\t'
	}
	return delim
}

// Known columns (SPEC §3).
const (
	colRecipient = iota
	colMessage
	colMemberID
	colDate
	colCampaign
	colSender
	colValidity
	numKnownCols
)

var knownColNames = [numKnownCols]string{"recipient", "message", "member id", "date", "campaign name", "sender", "validity"}

// headerAliases maps a normalised header (see headerKey) to its column.
var headerAliases = func() map[string]int {
	m := make(map[string]int)
	for col, names := range [numKnownCols][]string{
		colRecipient: {"recipient", "phone", "mobile", "msisdn", "number", "telefono", "celular", "movil"},
		colMessage:   {"message", "text", "sms", "mensaje", "texto"},
		colMemberID:  {"payback member id", "member id", "cardnumber", "card", "tarjeta"},
		colDate:      {"date", "send date", "schedule", "send at", "fecha", "fecha envio"},
		colCampaign:  {"campaign", "campaign name", "campana", "nombre campana"},
		colSender:    {"sender", "short code", "alpha id", "from", "remitente"},
		colValidity:  {"validity", "validity period", "expiry", "vigencia", "validez"},
	} {
		for _, n := range names {
			m[headerKey(n)] = col
		}
	}
	return m
}()

var stripMarks = transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)

// headerKey folds a header for matching: lower case, without accents,
// spaces, '_' and '-'.
func headerKey(h string) string {
	if s, _, err := transform.String(stripMarks, h); err == nil {
		h = s
	}
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		if r == '_' || r == '-' || unicode.IsSpace(r) {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// header is the parsed header row.
type header struct {
	names  []string          // as written, trimmed
	known  [numKnownCols]int // index of each known column, -1 when absent
	byName map[string]int    // exact header text -> index, for {Header}
}

// parseHeader maps the header row. It returns a file-level error message
// for a missing required column or a column matched twice.
func parseHeader(rec []string) (*header, string) {
	h := &header{names: make([]string, len(rec)), byName: make(map[string]int, len(rec))}
	for i := range h.known {
		h.known[i] = -1
	}
	for i, name := range rec {
		name = strings.TrimSpace(strings.TrimPrefix(name, "\uFEFF"))
		h.names[i] = name
		if name == "" {
			continue
		}
		if col, ok := headerAliases[headerKey(name)]; ok {
			if j := h.known[col]; j >= 0 {
				return nil, "columns \"" + clip(h.names[j], maxErrorTextLen) + "\" and \"" + clip(name, maxErrorTextLen) + "\" are both the " + knownColNames[col] + " column"
			}
			h.known[col] = i
		}
		if j, dup := h.byName[name]; dup {
			return nil, "column \"" + clip(h.names[j], maxErrorTextLen) + "\" appears twice"
		}
		h.byName[name] = i
	}
	return h, ""
}

// tmplPart is a piece of a message template: a literal, or (col >= 0) the
// value of a column.
type tmplPart struct {
	lit string
	col int
}

// compileTemplate splits msg into literals and {Header} references; a
// {...} that names no column (or the message column itself) stays as
// written. It returns nil when msg references no column.
func (h *header) compileTemplate(msg string) []tmplPart {
	if strings.IndexByte(msg, '{') < 0 {
		return nil
	}
	var parts []tmplPart
	lit := 0 // start of the pending literal
	for i := 0; i < len(msg); {
		open := strings.IndexByte(msg[i:], '{')
		if open < 0 {
			break
		}
		open += i
		end := strings.IndexByte(msg[open+1:], '}')
		if end < 0 {
			break
		}
		end += open + 1
		col, ok := h.byName[msg[open+1:end]]
		if !ok || col == h.known[colMessage] {
			i = open + 1
			continue
		}
		if open > lit {
			parts = append(parts, tmplPart{lit: msg[lit:open], col: -1})
		}
		parts = append(parts, tmplPart{col: col})
		lit, i = end+1, end+1
	}
	if parts == nil {
		return nil
	}
	if lit < len(msg) {
		parts = append(parts, tmplPart{lit: msg[lit:], col: -1})
	}
	return parts
}

// expand appends the template's text for one record to dst, trimmed as a
// message is (values trimmed, then the whole text), without ever holding
// more than limit bytes of it. When the trimmed text would be longer than
// limit, it stops adding and returns false with n, the length the whole
// expansion would have, computed from the parts' lengths: a template that
// repeats a long value thousands of times costs no memory.
func expand(dst []byte, parts []tmplPart, rec []string, limit int) (text []byte, fits bool, n int64) {
	start := len(dst)
	fits = true
	for _, p := range parts {
		s := p.lit
		if p.col >= 0 {
			s = strings.TrimSpace(rec[p.col])
		}
		n += int64(len(s))
		if !fits {
			continue
		}
		if len(dst) == start {
			s = strings.TrimLeft(s, textSpace)
		}
		if room := limit - (len(dst) - start); room > 0 {
			k := min(len(s), room)
			dst = append(dst, s[:k]...)
			s = s[k:]
		}
		// Beyond the limit only spaces may follow: they would be trimmed.
		if strings.TrimLeft(s, textSpace) != "" {
			fits = false
		}
	}
	if !fits {
		return dst[:start], false, n
	}
	return dst[:start+len(trimBytes(dst[start:]))], true, n
}

// textSpace is what trimBytes removes around a message.
const textSpace = " \t\r\n"
