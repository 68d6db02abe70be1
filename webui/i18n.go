package webui

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/message/catalog"

	"campaignd"
)

// The console speaks Spanish (es-MX) and English. Messages are written in
// English in the code and the templates; that English text is the key of
// the Spanish catalogue (catalog_es.go), read with golang.org/x/text/message
// (already a dependency: no new module for two languages whose plural rules
// are the same "one / other", which the templates choose with tn).

// Languages the console speaks.
const (
	langES = "es"
	langEN = "en"
)

// Languages lists the console's languages, for configuration checks.
var Languages = []string{langES, langEN}

var (
	tagES   = language.MustParse("es-MX")
	tagEN   = language.English
	matcher = language.NewMatcher([]language.Tag{tagES, tagEN})
)

// locale is everything a page needs to speak one language.
type locale struct {
	lang string
	p    *message.Printer
	// date and dateTime are the one layout of dates and times.
	date, dateTime, dateTimeSec string
	// inputHint is how a person writes a date and time in a form.
	inputHint string
	input     string // Go layout of inputHint
}

func newLocales() (map[string]*locale, error) {
	b := catalog.NewBuilder(catalog.Fallback(tagEN))
	for _, cat := range []map[string]string{campaignd.RowErrorsES, catalogES} {
		for k, v := range cat {
			if err := b.SetString(tagES, k, v); err != nil {
				return nil, err
			}
		}
	}
	return map[string]*locale{
		langES: {lang: langES, p: message.NewPrinter(tagES, message.Catalog(b)),
			date: "02/01/2006", dateTime: "02/01/2006 15:04", dateTimeSec: "02/01/2006 15:04:05",
			inputHint: "dd/mm/aaaa hh:mm", input: "02/01/2006 15:04"},
		langEN: {lang: langEN, p: message.NewPrinter(tagEN, message.Catalog(b)),
			date: "02 Jan 2006", dateTime: "02 Jan 2006 15:04", dateTimeSec: "02 Jan 2006 15:04:05",
			inputHint: "dd/mm/yyyy hh:mm", input: "02/01/2006 15:04"},
	}, nil
}

// T translates an English message (a format with args, like fmt.Sprintf).
func (l *locale) T(key string, args ...any) string {
	if len(args) == 0 {
		return l.lookup(key) // not a format: a literal % stays as written
	}
	return l.p.Sprintf(key, args...)
}

// lookup returns key's translation without formatting it (a message
// holding a literal % must not be read as a format).
func (l *locale) lookup(key string) string {
	if l.lang == langES {
		if v, ok := catalogES[key]; ok {
			return v
		}
		if v, ok := campaignd.RowErrorsES[key]; ok {
			return v
		}
	}
	return key
}

// messageStatesES are the states of a message whose Spanish differs from
// the same word said of a broadcast (catalogES): mensaje is masculine.
var messageStatesES = map[campaignd.MessageState]string{
	campaignd.StateCancelled:  "cancelado",
	campaignd.StateQueued:     "en cola",
	campaignd.StateSubmitted:  "enviado, sin acuse",
	campaignd.StateSuppressed: "suprimido",
}

// messageState names a message state in l's language.
func (l *locale) messageState(s campaignd.MessageState) string {
	if l.lang == langES {
		if v, ok := messageStatesES[s]; ok {
			return v
		}
	}
	return l.T(string(s))
}

// Tn picks the singular or plural message for n and formats n into it.
func (l *locale) Tn(n int64, one, other string) string {
	if n == 1 {
		return l.T(one, formatNum(n))
	}
	return l.T(other, formatNum(n))
}

// When formats a time in the console's zone, the one way of the locale.
func (l *locale) When(t time.Time, loc *time.Location, sec bool) string {
	if t.IsZero() {
		return "—"
	}
	layout := l.dateTime
	if sec {
		layout = l.dateTimeSec
	}
	return l.month(t.In(loc).Format(layout))
}

// Day formats a day written YYYY-MM-DD.
func (l *locale) Day(day string) string {
	d, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return day
	}
	return d.Format(l.date)
}

// month is a no-op for the numeric Spanish layout; the English one names
// the month, which Go writes in English already.
func (l *locale) month(s string) string { return s }

// Msg translates a message that was made elsewhere (an error of the
// backend, a row error of ingest): exactly, or by one of the known
// patterns; anything unknown is shown as it came.
func (l *locale) Msg(s string) string {
	if l.lang == langEN || s == "" {
		return s
	}
	if v, ok := catalogES[s]; ok {
		return v
	}
	for _, p := range patternsES {
		if m := p.re.FindStringSubmatch(s); m != nil {
			args := make([]any, 0, len(m)-1)
			for _, g := range m[1:] {
				args = append(args, l.Msg(g))
			}
			return l.p.Sprintf(p.es, args...)
		}
	}
	if v, ok := campaignd.TranslateRowError(s, l.Msg); ok {
		return v
	}
	return s
}

// pattern translates a family of messages made with a format: the groups
// of re (themselves translated when they are known words) fill es.
type pattern struct {
	re *regexp.Regexp
	es string
}

type langKey struct{}

// prefLang is the user-preference key of the console language.
const prefLang = "lang"

// PrefStore keeps per-user preferences. A Backend that implements it keeps
// each user's language across sessions; otherwise the choice lasts while
// the process runs.
type PrefStore interface {
	UserPref(user, key string) (string, error)
	SetUserPref(user, key, value string) error
}

// langOf is the request's language: the user's choice, else the browser's
// Accept-Language, else the configured default.
func (s *Server) langOf(r *http.Request) string {
	if v, ok := r.Context().Value(langKey{}).(string); ok {
		return v
	}
	if p := principalFrom(r.Context()); p != nil && p.User != "" {
		if v := s.userLang(p.User); v != "" {
			return v
		}
	}
	if h := r.Header.Get("Accept-Language"); h != "" {
		tags, _, err := language.ParseAcceptLanguage(h)
		if err == nil && len(tags) > 0 {
			_, i, conf := matcher.Match(tags...)
			if conf != language.No {
				return []string{langES, langEN}[i]
			}
		}
	}
	return s.o.Language
}

// loc returns the request's locale.
func (s *Server) loc(r *http.Request) *locale { return s.locales[s.langOf(r)] }

// withLang fixes a request's language (after a switch, for its answer).
func withLang(r *http.Request, lang string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), langKey{}, lang))
}

func (s *Server) userLang(user string) string {
	s.prefMu.Lock()
	v, ok := s.prefs[user]
	s.prefMu.Unlock()
	if ok {
		return v
	}
	if ps, _ := s.o.Backend.(PrefStore); ps != nil {
		if got, err := ps.UserPref(user, prefLang); err == nil {
			v = got
		}
	}
	if _, known := s.locales[v]; !known {
		v = ""
	}
	s.prefMu.Lock()
	s.prefs[user] = v
	s.prefMu.Unlock()
	return v
}

// handleLanguage is POST /language: the switch in the header. It remembers
// the choice for the user and goes back to the page it came from.
func (s *Server) handleLanguage(w http.ResponseWriter, r *http.Request) {
	lang := r.PostFormValue("lang")
	if _, ok := s.locales[lang]; !ok {
		s.Error(w, r, campaignd.Errorf(campaignd.EINVALID, "Unknown language %q.", lang))
		return
	}
	p := principalFrom(r.Context())
	if ps, _ := s.o.Backend.(PrefStore); ps != nil {
		if err := ps.SetUserPref(p.User, prefLang, lang); err != nil {
			s.Error(w, r, err)
			return
		}
	}
	s.prefMu.Lock()
	s.prefs[p.User] = lang
	s.prefMu.Unlock()
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// pct is part/total as a whole percentage, rounded to the nearest (29 of
// 30 is 97), never 0 for a non-zero part nor 100 for a part short of the
// total, so a sliver stays visible and "all" means all.
func pct(part, total int64) int64 {
	if total <= 0 || part <= 0 {
		return 0
	}
	if part >= total {
		return 100
	}
	v := (part*200 + total) / (total * 2)
	return min(max(v, 1), 99)
}

// shares returns whole percentages of parts that sum to exactly 100 (when
// any part is non-zero): largest remainder, so each share is within 1 of
// its exact value.
func shares(parts ...int64) []int64 {
	out := make([]int64, len(parts))
	var total int64
	for _, p := range parts {
		total += max(p, 0)
	}
	if total == 0 {
		return out
	}
	rem := make([]int64, len(parts))
	var sum int64
	for i, p := range parts {
		p = max(p, 0)
		out[i] = p * 100 / total
		rem[i] = p * 100 % total
		sum += out[i]
	}
	for ; sum < 100; sum++ {
		best := -1
		for i := range parts {
			if best < 0 || rem[i] > rem[best] {
				best = i
			}
		}
		out[best]++
		rem[best] = -1
	}
	return out
}

// formatDecimal writes f with one decimal and grouped thousands: 1,250.5
// (the same in es-MX and English).
func formatDecimal(f float64) string {
	neg := f < 0
	if neg {
		f = -f
	}
	s := strconv.FormatFloat(f, 'f', 1, 64)
	intPart, frac, _ := strings.Cut(s, ".")
	n, _ := strconv.ParseInt(intPart, 10, 64)
	out := formatNum(n) + "." + frac
	if neg {
		return "-" + out
	}
	return out
}
