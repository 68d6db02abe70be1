package webui

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/template/parse"
	"time"

	"campaignd"
)

// templateMessages returns every message the templates translate: the
// string arguments of t and tn.
func templateMessages(t *testing.T) []string {
	t.Helper()
	var out []string
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n != nil {
				for _, c := range n.Nodes {
					walk(c)
				}
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			if n == nil {
				return
			}
			for _, c := range n.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			if id, ok := n.Args[0].(*parse.IdentifierNode); ok && (id.Ident == "t" || id.Ident == "tn") {
				for _, a := range n.Args[1:] {
					if s, ok := a.(*parse.StringNode); ok {
						out = append(out, s.Text)
					}
				}
			}
			for _, a := range n.Args {
				walk(a)
			}
		case *parse.IfNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.TemplateNode:
			walk(n.Pipe)
		}
	}
	entries, err := templateFS.ReadDir("templates")
	if err != nil {
		t.Fatal(err)
	}
	funcs := map[string]any{}
	for _, b := range []string{"and", "or", "not", "len", "index", "slice", "print", "printf", "println",
		"eq", "ne", "lt", "le", "gt", "ge", "html", "js", "urlquery", "call"} {
		funcs[b] = fmt.Sprint
	}
	s, _ := MustOpenServer(t, nil)
	for k, v := range s.funcs(s.locales[langEN]) {
		funcs[k] = v
	}
	for _, e := range entries {
		b, _ := templateFS.ReadFile("templates/" + e.Name())
		trees, err := parse.Parse(e.Name(), string(b), "{{", "}}", funcs)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range trees {
			walk(tr.Root)
		}
	}
	return out
}

var goMessage = regexp.MustCompile(`\.T\("((?:[^"\\]|\\.)*)"`)

// TestCatalogueComplete: every message of the templates and the handlers
// has its Spanish translation, with the same verbs in the same order.
func TestCatalogueComplete(t *testing.T) {
	msgs := templateMessages(t)
	if len(msgs) < 150 {
		t.Fatalf("only %d template messages found: the walk is broken", len(msgs))
	}
	for _, f := range []string{"ui.go", "files.go", "suppressions.go", "auth.go", "errors.go", "audit.go", "rowerrors.go", "breakdown.go", "i18n.go"} {
		b, err := readSource(f)
		if err != nil {
			continue
		}
		for _, m := range goMessage.FindAllStringSubmatch(b, -1) {
			msgs = append(msgs, m[1])
		}
	}
	for _, w := range pastParticiple {
		msgs = append(msgs, w)
	}
	for _, st := range []string{"pending", "scheduled", "sending", "paused", "completed", "cancelled",
		"received", "accepted", "rejected", "pushed", "failed", "none", "admin", "operator", "viewer",
		"reply", "import", "api", "send", "schedule", "pause", "resume", "cancel", "delete",
		"DELIVRD", "UNDELIV", "EXPIRED", "DELETED", "REJECTD", "ACCEPTD", "UNKNOWN", "suppressed",
		"invalid recipient", "duplicate", "empty message", "message too long", "wrong number of fields", "opted out"} {
		msgs = append(msgs, st)
	}
	verbs := regexp.MustCompile(`%[-+# 0]*\d*(?:\.\d+)?[a-zA-Z%]`)
	for _, m := range msgs {
		es, ok := catalogES[m]
		if !ok {
			es, ok = campaignd.RowErrorsES[m]
		}
		if !ok {
			t.Errorf("no Spanish for %q", m)
			continue
		}
		if a, b := verbs.FindAllString(m, -1), verbs.FindAllString(es, -1); !slices.Equal(a, b) {
			t.Errorf("%q → %q: verbs %v, want %v", m, es, b, a)
		}
	}
	for k, v := range catalogES {
		if strings.TrimSpace(v) == "" {
			t.Errorf("empty translation of %q", k)
		}
	}
}

// TestMessagesTranslated: errors made elsewhere (the backend, ingest) are
// shown in Spanish, by exact text or by pattern; unknown texts pass as
// they came.
func TestMessagesTranslated(t *testing.T) {
	ls, err := newLocales()
	if err != nil {
		t.Fatal(err)
	}
	es, en := ls[langES], ls[langEN]
	for in, want := range map[string]string{
		"Cannot delete a broadcast that is completed.":                  "No se puede eliminar una campaña que está completada.",
		"invalid recipient":                                             "destinatario inválido",
		"duplicate":                                                     "duplicado",
		"Too many failed logins. Try again in 15 min 0 s.":              "Demasiados intentos fallidos. Inténtalo de nuevo en 15 min 0 s.",
		"12 of 100 rows are invalid (12.0%), more than the 10% allowed": "12 de 100 filas son inválidas (12.0 %), más del 10 % permitido",
		"3 fields, the header has 2":                                    "3 campos; el encabezado tiene 2",
		"something nobody translated":                                   "something nobody translated",
	} {
		if got := es.Msg(in); got != want {
			t.Errorf("es %q = %q, want %q", in, got, want)
		}
		if got := en.Msg(in); got != in {
			t.Errorf("en %q = %q", in, got)
		}
	}
}

func TestLocaleFormats(t *testing.T) {
	ls, _ := newLocales()
	at := time.Date(2026, 3, 7, 16, 5, 9, 0, time.UTC)
	for lang, want := range map[string][2]string{
		langES: {"07/03/2026 10:05", "07/03/2026 10:05:09"},
		langEN: {"07 Mar 2026 10:05", "07 Mar 2026 10:05:09"},
	} {
		l := ls[lang]
		if got := l.When(at, mexico, false); got != want[0] {
			t.Errorf("%s When = %q, want %q", lang, got, want[0])
		}
		if got := l.When(at, mexico, true); got != want[1] {
			t.Errorf("%s WhenSec = %q, want %q", lang, got, want[1])
		}
		if got := l.When(time.Time{}, mexico, false); got != "—" {
			t.Errorf("%s zero time = %q", lang, got)
		}
		if got := l.T("All %d errors", 20000); !strings.Contains(got, "20,000") {
			t.Errorf("%s grouped number: %q", lang, got)
		}
	}
	if got := ls[langES].Day("2026-03-07"); got != "07/03/2026" {
		t.Errorf("es day = %q", got)
	}
	for in, want := range map[float64]string{1250.5: "1,250.5", 0: "0.0", 999.96: "1,000.0", 1234567.25: "1,234,567.2", -3.5: "-3.5"} {
		if got := formatDecimal(in); got != want {
			t.Errorf("formatDecimal(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestPercentRounding(t *testing.T) {
	for _, tc := range []struct{ part, total, want int64 }{
		{29, 30, 97}, {1, 3, 33}, {2, 3, 67}, {1, 2, 50}, {0, 30, 0}, {30, 30, 100}, {5, 0, 0},
		{1, 1000, 1},    // a sliver is never shown as 0
		{999, 1000, 99}, // nor an almost-all as 100
		{28, 100, 28}, {285, 1000, 29},
	} {
		if got := pct(tc.part, tc.total); got != tc.want {
			t.Errorf("pct(%d, %d) = %d, want %d", tc.part, tc.total, got, tc.want)
		}
	}
	for _, parts := range [][]int64{{1, 1, 1}, {29, 1}, {280, 0, 3, 0, 717}, {1, 0, 0, 0, 0, 0, 0}, {2, 2, 2, 2, 2, 2, 2}, {995, 5, 0}} {
		s := shares(parts...)
		var sum, total int64
		for i, v := range s {
			sum += v
			total += parts[i]
		}
		if sum != 100 {
			t.Errorf("shares(%v) = %v, sum %d", parts, s, sum)
		}
		for i, v := range s {
			exact := float64(parts[i]) * 100 / float64(total)
			if float64(v) < exact-1 || float64(v) > exact+1 {
				t.Errorf("shares(%v)[%d] = %d, exact %.2f", parts, i, v, exact)
			}
		}
	}
	if s := shares(0, 0); s[0] != 0 || s[1] != 0 {
		t.Errorf("shares of nothing = %v", s)
	}
}

// TestLanguageChoice: the user's choice, else Accept-Language, else the
// configured default; the choice is remembered per user (in the store when
// the backend keeps preferences) and does not leak to other users.
func TestLanguageChoice(t *testing.T) {
	prefs := &memPrefs{m: map[string]string{}}
	s, fake := MustOpenServer(t, func(o *Options) { o.Language = "es" })
	_ = fake
	s.o.Backend = prefBackend{fake, prefs}
	h := s.Handler()

	// Default: Spanish; the browser's language wins over it.
	if w := get(h, "/login", ""); !strings.Contains(w, "Iniciar sesión") || !strings.Contains(w, `lang="es-MX"`) {
		t.Errorf("default login page not in Spanish:\n%.600s", w)
	}
	if w := get(h, "/login", "en-US,en;q=0.9"); !strings.Contains(w, ">Sign in<") {
		t.Errorf("Accept-Language en ignored:\n%.600s", w)
	}
	if w := get(h, "/login", "fr-FR, es-MX;q=0.8"); !strings.Contains(w, "Iniciar sesión") {
		t.Errorf("Accept-Language es-MX (second choice) ignored")
	}

	op := login(t, h, "operator")
	if b := op.do("GET", "/broadcasts", nil, nil).Body.String(); !strings.Contains(b, "Campañas por archivo") || !strings.Contains(b, "pendiente") {
		t.Fatalf("list not in Spanish:\n%.2000s", b)
	}
	// Switch to English: remembered for this user, in the store.
	w := op.do("POST", "/language", strings.NewReader(url.Values{"lang": {"en"}, "csrf": {op.csrf}, "next": {"/broadcasts/4"}}.Encode()), nil)
	if w.Code != 303 || w.Header().Get("Location") != "/broadcasts/4" {
		t.Fatalf("switch = %d %v", w.Code, w.Header())
	}
	if v, _ := prefs.UserPref("operator", "lang"); v != "en" {
		t.Errorf("preference not stored: %q", v)
	}
	if b := op.do("GET", "/broadcasts/4", nil, map[string]string{"Accept-Language": "es-MX"}).Body.String(); !strings.Contains(b, "Send or schedule") {
		t.Errorf("user's choice did not win over Accept-Language")
	}
	// A new server (a restart) still knows the choice.
	s2, _ := MustOpenServer(t, func(o *Options) { o.Language = "es" })
	s2.o.Backend = prefBackend{fake, prefs}
	if got := s2.userLang("operator"); got != "en" {
		t.Errorf("after restart: %q", got)
	}
	// Another user keeps the default, and errors come in their language.
	adm := login(t, h, "admin")
	if b := adm.do("GET", "/broadcasts/4", nil, nil).Body.String(); !strings.Contains(b, "Enviar o programar") {
		t.Errorf("admin page not in Spanish")
	}
	if w := adm.post("/broadcasts/4/schedule", url.Values{"at": {"mañana"}}); w.Code != 400 || !strings.Contains(w.Body.String(), "Fecha inválida") {
		t.Errorf("Spanish error = %d %s", w.Code, w.Body)
	}
	// A refused action on a stale page, in Spanish.
	adm.post("/broadcasts/4/send", nil)
	if w := adm.post("/broadcasts/4/delete", nil); w.Code != 409 || !strings.Contains(w.Body.String(), "Esta página no estaba al día: la campaña ahora está enviando") {
		t.Errorf("stale delete = %d %s", w.Code, w.Body)
	}
	// Unknown languages are refused.
	if w := op.do("POST", "/language", strings.NewReader(url.Values{"lang": {"fr"}, "csrf": {op.csrf}}.Encode()), nil); w.Code != 400 {
		t.Errorf("unknown language = %d", w.Code)
	}
}

// get fetches a page without a session, with the browser's languages.
func get(h http.Handler, path, acceptLang string) string {
	r := httptest.NewRequest("GET", path, nil)
	if acceptLang != "" {
		r.Header.Set("Accept-Language", acceptLang)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Body.String()
}

func readSource(name string) (string, error) {
	b, err := os.ReadFile(name)
	return string(b), err
}

type memPrefs struct {
	mu sync.Mutex
	m  map[string]string
}

func (p *memPrefs) UserPref(user, key string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[user+"/"+key], nil
}

func (p *memPrefs) SetUserPref(user, key, value string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m[user+"/"+key] = value
	return nil
}

type prefBackend struct {
	*fakeBackend
	*memPrefs
}

// TestResultsAddUp: a settled broadcast's results by final status and by
// SMPP error code, with shares that sum to 100; a cancelled one shows its
// cancelled share in the list's bar and is labelled "Cancelled at".
func TestResultsAddUp(t *testing.T) {
	s, fake := MustOpenServer(t, nil)
	h := s.Handler()
	c := login(t, h, "viewer")
	body := c.do("GET", "/broadcasts/1", nil, nil).Body.String()
	i := strings.Index(body, `id="breakdown"`)
	if i < 0 {
		t.Fatalf("no breakdown:\n%s", body)
	}
	bd := body[i : strings.Index(body[i:], "</table>")+i]
	for _, want := range []string{"DELIVRD", "1,104", "REJECTD", "0x00000045", "EXPIRED", "UNDELIV", "UNKNOWN"} {
		if !strings.Contains(bd, want) {
			t.Errorf("breakdown lacks %q:\n%s", want, bd)
		}
	}
	if !strings.Contains(body, `id="chart"`) || strings.Count(body, "<polyline") != 2 {
		t.Errorf("no chart of the broadcast over time")
	}
	var sum int
	for _, m := range regexp.MustCompile(`<td class="num muted">(\d+)%</td>`).FindAllStringSubmatch(bd, -1) {
		var n int
		fmt.Sscan(m[1], &n)
		sum += n
	}
	if sum != 100 {
		t.Errorf("breakdown shares sum to %d", sum)
	}
	// Results table shares also sum to 100 (92 + 5 + 3).
	res := body[strings.Index(body, `id="results"`):]
	res = res[:strings.Index(res, "</table>")]
	for _, want := range []string{">92%<", ">5%<", ">3%<", ">100%<"} {
		if !strings.Contains(res, want) {
			t.Errorf("results lack %s:\n%s", want, res)
		}
	}
	// The cancelled broadcast: its bar shows what was sent, not 100 %.
	list := c.do("GET", "/broadcasts", nil, nil).Body.String()
	row := list[strings.Index(list, `id="b7"`):]
	row = row[:strings.Index(row, "</tr>")]
	if !strings.Contains(row, `value="310"`) || !strings.Contains(row, "34% sent") {
		t.Errorf("cancelled row's bar:\n%s", row)
	}
	fake.edit(7, func(b *campaignd.Broadcast) { b.CompletedAt = time.Now() })
	if p := c.do("GET", "/broadcasts/7", nil, nil).Body.String(); !strings.Contains(p, "Cancelled at") || strings.Contains(p, "Completed at") ||
		!strings.Contains(p, `id="r-cancelled">590<`) {
		t.Errorf("cancelled page labels or rows wrong")
	}
	// A broadcast sent now after being scheduled no longer shows the old date.
	fake.edit(3, func(b *campaignd.Broadcast) { b.Status, b.StartedAt = campaignd.StatusSending, time.Now() })
	if p := c.do("GET", "/broadcasts/3", nil, nil).Body.String(); strings.Contains(p, `id="scheduled-at"`) || !strings.Contains(p, `id="started-at"`) {
		t.Errorf("sending broadcast still shows its old schedule, or no start")
	}
	list = c.do("GET", "/broadcasts", nil, nil).Body.String()
	row = list[strings.Index(list, `id="b3"`):]
	row = row[:strings.Index(row, "</tr>")]
	if strings.Count(row, `class="when"><span class="muted">—</span>`) != 1 {
		t.Errorf("the list still shows the started broadcast's old schedule:\n%s", row)
	}
}

func TestRowErrorsExplained(t *testing.T) {
	ls, _ := newLocales()
	for _, tc := range []struct {
		e      campaignd.FileError
		es, en string
	}{
		{campaignd.FileError{Error: "invalid recipient", Value: "5512 3456"}, "destinatario inválido: número de 8 dígitos: se esperan 10", "invalid recipient: 8-digit number: 10 are expected"},
		{campaignd.FileError{Error: "invalid recipient", Value: "55-1234-56789"}, "número de 11 dígitos: se esperan 10, o 52 y 10", "11-digit number: 10 are expected, or 52 and 10"},
		{campaignd.FileError{Error: "invalid recipient", Value: "55 1234 ABCD"}, "contiene “A”", "it contains “A”"},
		{campaignd.FileError{Error: "invalid recipient", Value: "+52 55 1234 567"}, "+52 debe ir seguido de 10 dígitos, no de 9", "+52 must be followed by 10 digits, not 9"},
		{campaignd.FileError{Error: "invalid recipient", Value: "+1 415 555 0100"}, "fuera de México (+141)", "outside Mexico (+141)"},
		{campaignd.FileError{Error: "invalid recipient", Value: ""}, "la celda está vacía", "the cell is empty"},
		{campaignd.FileError{Error: "duplicate", Value: "5512345678"}, "duplicado: el mismo número", "duplicate: the same number"},
		{campaignd.FileError{Error: "duplicate", Value: "5512345678", FirstLine: 14}, "duplicado de la línea 14: cada número se envía una vez", "duplicate of line 14: each number is sent once"},
		{campaignd.FileError{Error: "no message column (name one of: message, text, sms, mensaje, texto)"}, "sin columna de mensaje", "no message column"},
	} {
		if got := ls[langES].explain(tc.e); !strings.Contains(got, tc.es) {
			t.Errorf("es %+v = %q, want %q in it", tc.e, got, tc.es)
		}
		if got := ls[langEN].explain(tc.e); !strings.Contains(got, tc.en) {
			t.Errorf("en %+v = %q, want %q in it", tc.e, got, tc.en)
		}
	}
}

func TestChartBuckets(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 30, 0, time.UTC)
	if newChart(nil, nil) != nil {
		t.Error("a chart of nothing")
	}
	var subs, sets []time.Time
	for i := range 300 { // 5 hours, one a minute
		subs = append(subs, t0.Add(time.Duration(i)*time.Minute))
		sets = append(sets, t0.Add(time.Duration(i)*time.Minute+10*time.Second))
	}
	subs = append(subs, t0, t0) // a peak of 3 in the first minute
	c := newChart(subs, sets)
	if c.StepMinutes != 3 || c.Max != 5 || !c.Start.Equal(t0.Truncate(time.Minute)) {
		t.Errorf("chart step %d, max %d, start %v", c.StepMinutes, c.Max, c.Start)
	}
	if n := len(strings.Fields(c.Submitted)); n != 2*100 {
		t.Errorf("%d points, want 200 (100 steps)", n)
	}
	if !strings.HasPrefix(c.Submitted, "0.0,4.0 ") {
		t.Errorf("the peak is not at the top: %.40s", c.Submitted)
	}
}

// TestAuditDetailsShown: the engine's audit details show their times the
// one way, and read in Spanish.
func TestAuditDetailsShown(t *testing.T) {
	s, _ := MustOpenServer(t, nil)
	for lang, cases := range map[string]map[string]string{
		langES: {
			`deleted pending broadcast "Navidad"`:               `se eliminó la campaña "Navidad", que estaba pendiente`,
			"pending -> scheduled at 2026-12-03T23:48:00-06:00": "pendiente → programada para el 03/12/2026 23:48",
			"scheduled for 2026-12-03T23:48:00-06:00":           "programada para el 03/12/2026 23:48",
			"2026-12-03T23:48:00-06:00":                         "03/12/2026 23:48",
			"525512345678 (reply: BAJA)":                        "525512345678 (reply: BAJA)",
		},
		langEN: {
			"pending -> scheduled at 2026-12-03T23:48:00-06:00": "pending -> scheduled at 03 Dec 2026 23:48",
		},
	} {
		detail := s.funcs(s.locales[lang])["detail"].(func(string) string)
		for in, want := range cases {
			if got := detail(in); got != want {
				t.Errorf("%s %q = %q, want %q", lang, in, got, want)
			}
		}
	}
}

func TestReportsChart(t *testing.T) {
	s, _ := MustOpenServer(t, nil)
	c := login(t, s.Handler(), "viewer")
	body := c.do("GET", "/reports", nil, nil).Body.String()
	if !strings.Contains(body, `id="per-day"`) || strings.Count(body, "<rect ") != 3 {
		t.Fatalf("reports chart missing or wrong:\n%s", body)
	}
	bars, peak := dayBars([]*campaignd.Report{{Day: "2026-05-03", Rows: 300}, {Day: "2026-05-02", Rows: 100}, {Day: "2026-05-04", Partial: true, Rows: 9999}})
	if peak != 300 || len(bars) != 2 || bars[0].Day != "2026-05-02" || bars[1].H != float64(chartH-4) || bars[0].H*3 != bars[1].H {
		t.Errorf("bars %+v, peak %d", bars, peak)
	}
}

// TestMessageStateWording: in Spanish a cancelled message is "cancelado"
// (un mensaje) where a cancelled broadcast is "cancelada" (una campaña).
func TestMessageStateWording(t *testing.T) {
	ls, err := newLocales()
	if err != nil {
		t.Fatal(err)
	}
	es, en := ls[langES], ls[langEN]
	if got := es.messageState(campaignd.StateCancelled); got != "cancelado" {
		t.Errorf("es message cancelled = %q", got)
	}
	if got := es.T(string(campaignd.StatusCancelled)); got != "cancelada" {
		t.Errorf("es broadcast cancelled = %q", got)
	}
	if got := es.messageState(campaignd.StateExpired); got != es.T("EXPIRED") {
		t.Errorf("es EXPIRED = %q", got)
	}
	if got := en.messageState(campaignd.StateCancelled); got != "cancelled" {
		t.Errorf("en message cancelled = %q", got)
	}
	s, _ := MustOpenServer(t, func(o *Options) { o.Language = langES })
	body := login(t, s.Handler(), "viewer").do("GET", "/broadcasts/7", nil, nil).Body.String()
	if i := strings.Index(body, `id="breakdown"`); i >= 0 {
		bd := body[i : strings.Index(body[i:], "</table>")+i]
		if strings.Contains(bd, "<td>cancelada</td>") {
			t.Errorf("breakdown calls messages cancelada:\n%s", bd)
		}
		if !strings.Contains(bd, "<td>cancelado</td>") {
			t.Logf("breakdown of 7 has no cancelled row:\n%s", bd)
		}
	}
}

// TestAuditDetailsTranslated: the engine's audit details (transitions,
// validity changes, a start because the date had passed) read in Spanish.
func TestAuditDetailsTranslated(t *testing.T) {
	ls, err := newLocales()
	if err != nil {
		t.Fatal(err)
	}
	es := ls[langES]
	for in, want := range map[string]string{
		"pending -> sending":                            "pendiente → enviando",
		"scheduled -> sending, was scheduled for 03/05": "programada → enviando; estaba programada para el 03/05",
		"validity default -> 2h":                        "vigencia predeterminada → 2h",
		"validity 2h -> 1d":                             "vigencia 2h → 1d",
		"Cannot change the validity of a broadcast that is sending: it has started.":        "No se puede cambiar la vigencia de una campaña que está enviando: ya empezó.",
		"Validity 16d is out of bounds: choose between 10 minutes (10m) and 15 days (15d).": "La vigencia 16d está fuera de los límites: elige entre 10 minutos (10m) y 15 días (15d).",
		`Invalid validity "x": write a duration such as 90m, 48h, 2d or 1d12h.`:             `Vigencia inválida "x": escribe una duración como 90m, 48h, 2d o 1d12h.`,
		"started at once: its date 01/05/2026 09:00 had passed when the file was ingested":  "iniciada de inmediato: su fecha, 01/05/2026 09:00, ya había pasado cuando se procesó el archivo",
	} {
		if got := es.Msg(in); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
}
