package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"campaignd"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages are the page templates; each is parsed together with layout.html,
// and its htmx fragments are {{define}} blocks inside it.
var pages = []string{"login", "error", "broadcasts", "broadcast", "files", "file", "reports", "suppressions", "replies", "audit", "tombstone", "help"}

type templates struct {
	set map[string]*template.Template
}

func parseTemplates(funcs template.FuncMap) (*templates, error) {
	base, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("webui: parse layout: %w", err)
	}
	t := &templates{set: make(map[string]*template.Template)}
	for _, p := range pages {
		c, err := base.Clone()
		if err != nil {
			return nil, err
		}
		if t.set[p], err = c.ParseFS(templateFS, "templates/"+p+".html"); err != nil {
			return nil, fmt.Errorf("webui: parse template %s: %w", p, err)
		}
		if t.set[p].Lookup("content") == nil {
			return nil, fmt.Errorf("webui: template %s defines no content", p)
		}
	}
	return t, nil
}

// page is what every full page is rendered with.
type page struct {
	Title string
	Nav   string
	P     *principal
	CSRF  string
	Flash *flash
	Data  any
	// Path is the page's own path, where the language switch comes back.
	Path string
}

// CanAct reports whether the signed-in user may act (buttons are hidden
// otherwise; the server checks again on every request).
func (p *page) CanAct() bool { return p.P != nil && p.P.Role.CanAct() }

// flash is a one-line confirmation or error shown in place.
type flash struct {
	Error bool
	Text  string
}

func (s *Server) fill(r *http.Request, p *page) *page {
	if p.P = principalFrom(r.Context()); p.P != nil && p.P.Session != nil {
		p.CSRF = p.P.Session.CSRFToken
	}
	if p.Path == "" {
		p.Path = r.URL.RequestURI()
	}
	return p
}

// renderPage renders a full page to a buffer, then writes it.
func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	s.renderFragment(w, r, status, name, "layout", s.fill(r, p))
}

// renderFragment renders one {{define}} block of a page's templates.
func (s *Server) renderFragment(w http.ResponseWriter, r *http.Request, status int, pageName, block string, data any) {
	var buf bytes.Buffer
	t := s.tmpl[s.langOf(r)].set[pageName]
	if t == nil {
		s.log.Error("no such template", "template", pageName)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, block, data); err != nil {
		s.log.Error("render template", "template", pageName+"/"+block, keyPath, r.URL.Path,
			"id", chi.URLParam(r, "id"), slog.Any(keyError, err))
		http.Error(w, "This page could not be shown; the failure is logged.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (s *Server) funcs(l *locale) template.FuncMap {
	loc := s.o.Location
	return template.FuncMap{
		"static": func(name string) (string, error) {
			u, ok := s.static.url[name]
			if !ok {
				return "", fmt.Errorf("no static file %q", name)
			}
			return u, nil
		},
		"logo":  func() string { return s.static.url["logo"+path.Ext(s.o.LogoName)] },
		"brand": func() string { return s.o.Title },
		"lang":  func() string { return l.lang },
		"t":     l.T,
		"tn":    l.Tn,
		// msg translates a message made elsewhere (errors, row errors).
		"msg": l.Msg,
		// cluster is this node and the leader when running as several
		// nodes, nil alone.
		"cluster": func() *struct{ Node, Leader string } {
			if s.o.Cluster == nil {
				return nil
			}
			n, l := s.o.Cluster()
			if l == "" {
				l = "?"
			}
			return &struct{ Node, Leader string }{n, l}
		},
		// rowError explains a row or file error.
		"rowError": l.explain,
		// detail shows an audit detail: a time in it (a schedule's date,
		// written RFC 3339 by the engine) the one way times are shown.
		"detail": func(d string) string {
			d = rfc3339.ReplaceAllStringFunc(d, func(v string) string {
				if t, err := time.Parse(time.RFC3339, v); err == nil {
					return l.When(t, loc, false)
				}
				return v
			})
			return l.Msg(d)
		},
		// word translates one domain word (a status, an outcome, an action).
		"word": func(v any) string { return l.T(fmt.Sprint(v)) },
		// state names a message's state: in Spanish a message (mensaje)
		// is "cancelado" where a broadcast (campaña) is "cancelada".
		"state":   l.messageState,
		"when":    func(t time.Time) string { return l.When(t, loc, false) },
		"whenSec": func(t time.Time) string { return l.When(t, loc, true) },
		"day":     l.Day,
		"inputTime": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.In(loc).Format(l.input)
		},
		"inputHint":       func() string { return l.inputHint },
		"defaultValidity": func() string { return campaignd.FormatValidity(s.o.DefaultValidity) },
		// validity is a broadcast's validity period, its own or the default.
		"validity": func(b *campaignd.Broadcast) string {
			return campaignd.FormatValidity(b.ValidityOr(s.o.DefaultValidity))
		},
		"zone":    func() string { return loc.String() },
		"num":     formatNum,
		"pct":     pct,
		"shares":  shares,
		"allowed": func(st campaignd.Status, a string) bool { return campaignd.Allowed(st, campaignd.Action(a)) },
		"rate": func(f float64) string {
			if f <= 0 {
				return "—"
			}
			return l.T("%s msg/s", formatDecimal(f))
		},
		"eta": func(d time.Duration) string {
			if d <= 0 {
				return "—"
			}
			return humanDuration(d)
		},
		"add":     func(a, b int) int { return a + b },
		"add64":   func(a, b int64) int64 { return a + b },
		"sub64":   func(a, b int64) int64 { return a - b },
		"done":    func(b *campaignd.Broadcast) int64 { return b.Counts.Total - b.Counts.Queued },
		"bytes":   formatBytes,
		"int64":   func(n int) int64 { return int64(n) },
		"index64": func(xs []int64, i int) int64 { return xs[i] },
	}
}

// rfc3339 finds the times the engine writes into audit details.
var rfc3339 = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})`)

// inputLayout is the value format of <input type="datetime-local">.
const inputLayout = "2006-01-02T15:04"

func formatNum(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KB"
	}
	return strconv.FormatInt(n, 10) + " B"
}

func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + " s"
	case d < time.Hour:
		return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
}

// staticFiles serves the embedded static files under content-hashed names
// (app.3f2a1b9c.css), so they can be cached forever.
type staticFiles struct {
	url   map[string]string // app.css → /static/app.3f2a1b9c.css
	files map[string][]byte // app.3f2a1b9c.css → content
}

func loadStatic() (*staticFiles, error) {
	sf := &staticFiles{url: map[string]string{}, files: map[string][]byte{}}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		name := path.Base(p)
		sum := sha256.Sum256(b)
		ext := path.Ext(name)
		if strings.HasSuffix(name, ".min.js") {
			ext = ".min.js"
		}
		hashed := strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:4]) + ext
		sf.url[name] = "/static/" + hashed
		sf.files[hashed] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("webui: static files: %w", err)
	}
	return sf, nil
}

// add serves b under a content-hashed form of name.
func (sf *staticFiles) add(name string, b []byte) error {
	switch path.Ext(name) {
	case ".svg", ".png", ".jpg", ".jpeg", ".webp", ".gif":
	default:
		return fmt.Errorf("webui: logo %q: use an SVG, PNG, JPEG, WebP or GIF file", name)
	}
	sum := sha256.Sum256(b)
	ext := path.Ext(name)
	hashed := strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:4]) + ext
	sf.url[name] = "/static/" + hashed
	sf.files[hashed] = b
	return nil
}

func (sf *staticFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	b, ok := sf.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Write(b)
}
