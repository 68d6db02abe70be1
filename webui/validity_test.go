package webui

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"campaignd"
)

// The API sets a broadcast's validity period with the validity action or
// with send and schedule; a value out of bounds is a 400 that says why,
// and nothing is applied.
func TestAPIValidity(t *testing.T) {
	s, fake := MustOpenServer(t, func(o *Options) { o.DefaultValidity = 36 * time.Hour })
	h := s.Handler()
	future := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"default shown", "GET", "/api/v1/broadcasts/4", "", 200, `"validity": "1d12h",
  "validity_default": true`},
		{"too short", "POST", "/api/v1/broadcasts/4/validity", `{"validity":"5m"}`, 400, "Validity 5m is out of bounds: choose between 10 minutes (10m) and 15 days (15d)."},
		{"too long", "POST", "/api/v1/broadcasts/4/validity", `{"validity":"16d"}`, 400, "out of bounds"},
		{"unreadable", "POST", "/api/v1/broadcasts/4/validity", `{"validity":"dos días"}`, 400, `Invalid validity \"dos días\": write a duration such as 90m, 48h, 2d or 1d12h.`},
		{"missing", "POST", "/api/v1/broadcasts/4/validity", `{}`, 400, "Missing validity"},
		{"schedule too long", "POST", "/api/v1/broadcasts/4/schedule", `{"at":"` + future + `","validity":"30d"}`, 400, "out of bounds"},
		{"send too short", "POST", "/api/v1/broadcasts/4/send", `{"validity":"1m"}`, 400, "out of bounds"},
		{"unchanged", "GET", "/api/v1/broadcasts/4", "", 200, `"status": "pending"`},
		{"set", "POST", "/api/v1/broadcasts/4/validity", `{"validity":"2h"}`, 200, `"validity": "2h"`},
		{"kept", "GET", "/api/v1/broadcasts/4", "", 200, `"validity": "2h"`},
		{"with schedule", "POST", "/api/v1/broadcasts/6/schedule", `{"at":"` + future + `","validity":"90m"}`, 200, `"validity": "1h30m"`},
		{"with send", "POST", "/api/v1/broadcasts/3/send", `{"validity":"15d"}`, 200, `"validity": "15d"`},
		{"while sending", "POST", "/api/v1/broadcasts/3/validity", `{"validity":"1h"}`, 409, "Cannot change the validity of a broadcast that is sending: it has started."},
		{"with pause", "POST", "/api/v1/broadcasts/2/pause", `{"validity":"1h"}`, 400, "only with send or schedule"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := apiReq(t, h, tc.method, tc.path, "operator", tc.body)
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
				t.Fatalf("%s %s = %d, want %d with %q:\n%s", tc.method, tc.path, w.Code, tc.code, tc.want, w.Body)
			}
		})
	}
	if b := fake.bs[4].b; b.Validity != 2*time.Hour || b.Status != campaignd.StatusPending {
		t.Errorf("broadcast 4: %s %v", b.Status, b.Validity)
	}
	if b := fake.bs[2].b; b.Validity != 0 || b.Status != campaignd.StatusSending {
		t.Errorf("a refused pause changed broadcast 2: %s %v", b.Status, b.Validity)
	}
	if a := fake.audit[4]; len(a) != 1 || a[0].Action != "validity" || a[0].Detail != "validity default -> 2h" {
		t.Errorf("audit of 4 = %+v", a)
	}
}

// The console's field, in both languages: an error out of bounds, a
// confirmation and the value on the page when applied.
func TestConsoleValidity(t *testing.T) {
	for _, tc := range []struct {
		lang, bad, done, label, dflt string
	}{
		{"en", "Validity 20d is out of bounds: choose between 10 minutes (10m) and 15 days (15d).",
			"Validity set to 3h: each message may be delivered up to 3h after it is sent.", "Validity", "default"},
		{"es", "La vigencia 20d está fuera de los límites: elige entre 10 minutos (10m) y 15 días (15d).",
			"Vigencia fijada en 3h: cada mensaje puede entregarse hasta 3h después de enviarse.", "Vigencia", "predeterminada"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			s, fake := MustOpenServer(t, func(o *Options) { o.Language = tc.lang })
			op := login(t, s.Handler(), "operator")
			page := op.do("GET", "/broadcasts/4", nil, nil).Body.String()
			for _, want := range []string{`<dt>` + tc.label + `</dt><dd id="validity"`, `2d <span class="muted">(` + tc.dflt + `)</span>`, `name="validity" id="validity-input" value="2d"`} {
				if !strings.Contains(page, want) {
					t.Fatalf("page lacks %q", want)
				}
			}
			w := op.post("/broadcasts/4/validity", url.Values{"validity": {"20d"}})
			if w.Code != 400 || !strings.Contains(w.Body.String(), tc.bad) || w.Header().Get("HX-Retarget") != "#flash" {
				t.Fatalf("20d: %d %s", w.Code, w.Body)
			}
			if fake.bs[4].b.Validity != 0 {
				t.Fatalf("a refused validity was applied: %v", fake.bs[4].b.Validity)
			}
			w = op.post("/broadcasts/4/validity", url.Values{"validity": {"3h"}})
			if w.Code != 200 || !strings.Contains(w.Body.String(), tc.done) || !strings.Contains(w.Body.String(), `<dd id="validity"`) {
				t.Fatalf("3h: %d %s", w.Code, w.Body)
			}
			if fake.bs[4].b.Validity != 3*time.Hour {
				t.Fatalf("validity = %v", fake.bs[4].b.Validity)
			}
			// A sending broadcast shows its validity, without the field.
			page = op.do("GET", "/broadcasts/2", nil, nil).Body.String()
			if !strings.Contains(page, `<dd id="validity"`) || strings.Contains(page, `id="validity-input"`) {
				t.Fatal("sending page: validity not shown, or still editable")
			}
		})
	}
}
