package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
	"campaignd/smpp"
)

type apiSuppressions struct {
	Suppressions []campaignd.Suppression `json:"suppressions"`
	Next         string                  `json:"next"`
	Total        int                     `json:"total"`
}

type apiReplies struct {
	Replies []campaignd.MO `json:"replies"`
}

func suppressionTotal(t *testing.T, m *Main) int {
	t.Helper()
	var l apiSuppressions
	if code := apiGet(t, webBase(m), "/api/v1/suppressions", &l); code != 200 {
		t.Fatalf("GET suppressions: %d", code)
	}
	return l.Total
}

func getListed(t *testing.T, m *Main, number string) *campaignd.Suppression {
	t.Helper()
	var l apiSuppressions
	apiGet(t, webBase(m), "/api/v1/suppressions?q="+number, &l)
	for _, s := range l.Suppressions {
		if s.Number == number {
			return &s
		}
	}
	return nil
}

func getReplies(t *testing.T, m *Main) []campaignd.MO {
	t.Helper()
	var r apiReplies
	if code := apiGet(t, webBase(m), "/api/v1/replies", &r); code != 200 {
		t.Fatalf("GET replies: %d", code)
	}
	return r.Replies
}

// rows writes an upload of the given national numbers (10 digits).
func optoutCSV(msg string, date string, numbers ...string) string {
	var b strings.Builder
	b.WriteString("Telefono,Mensaje,Fecha\n")
	for _, n := range numbers {
		fmt.Fprintf(&b, "%s,%s,%s\n", n, msg, date)
	}
	return b.String()
}

func nationalNumber(i int) string { return fmt.Sprintf("55%08d", i) }

func optoutMetrics(t *testing.T, m *Main) string {
	t.Helper()
	resp, err := http.Get("http://" + m.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Replies in every keyword form and both codings put their senders on the
// list (a confirmation goes back once each); a reply that is no keyword is
// kept and visible; a later upload over FTP skips the listed numbers as
// "opted out", apart from invalid rows; an operator's removal lets a
// number through again.
func TestOptoutRepliesThenUpload(t *testing.T) {
	c := testConfig(t.TempDir())
	c.Optout.ConfirmText = "Listo: ya no recibiras mensajes. Payback"
	m := MustRunMain(t, c)
	submitsBefore := m.Sim.Stats().Submits

	mos := []smpp.SimMO{
		{From: "525500000001", To: "28776", Text: "BAJA"},
		{From: "5215500000002", To: "28776", Text: "baja."}, // the old mobile form of the number
		{From: "525500000003", To: "28776", Text: "Stop por favor", DataCoding: 8},
		{From: "525500000004", To: "28776", Text: "no más", DataCoding: 8},
		{From: "525500000005", To: "28776", Text: "NO MAS", Payload: true},
		{From: "525500000006", To: "28776", Text: "  Alto!! "},
		{From: "525500000009", To: "28776", Text: "Hola, ¿cuándo llegan mis puntos?"},
		{From: "525500000001", To: "28776", Text: "baja"}, // again: no second confirmation
	}
	for _, mo := range mos {
		if err := m.Sim.SendMO(mo); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, "every reply kept", func() bool { return len(getReplies(t, m)) == len(mos) })
	if n := suppressionTotal(t, m); n != 6 {
		t.Fatalf("list holds %d numbers, want 6", n)
	}
	for i := 1; i <= 6; i++ {
		s := getListed(t, m, fmt.Sprintf("5255%08d", i))
		if s == nil || s.Reason != campaignd.SuppressReply || s.By != "sms" || s.Source == "" {
			t.Fatalf("number %d: %+v", i, s)
		}
	}
	if s := getListed(t, m, "525500000009"); s != nil {
		t.Fatalf("a reply that is no keyword suppressed its sender: %+v", s)
	}
	var other *campaignd.MO
	for _, r := range getReplies(t, m) {
		if r.From == "525500000009" {
			other = &r
		}
	}
	if other == nil || other.Keyword != "" || other.Text != "Hola, ¿cuándo llegan mis puntos?" {
		t.Fatalf("the other reply: %+v", other)
	}
	// One confirmation per number newly listed, none for the repeat.
	testenv.Eventually(t, 10*time.Second, "confirmations", func() bool { return m.Sim.Stats().Submits-submitsBefore >= 6 })
	if n := m.Sim.Stats().Submits - submitsBefore; n != 6 {
		t.Fatalf("%d confirmations sent, want 6", n)
	}

	// An upload skips them: 12 rows, 6 opted out, 1 invalid — 6 out of 12
	// is far above max_invalid_percent, yet the file is accepted.
	numbers := []string{"123"}
	for i := 0; i < 11; i++ {
		numbers = append(numbers, nationalNumber(i))
	}
	upload(t, m.FTP.Addr(), "after.csv", optoutCSV("Hola", "", numbers...))
	b := broadcastOf(t, m, "after.csv")
	if b.Counts.OptedOut != 6 || b.Counts.Invalid != 1 || b.Counts.Total != 5 {
		t.Fatalf("counts %+v: want 6 opted out, 1 invalid, 5 messages", b.Counts)
	}
	errs, err := os.ReadFile(filepath.Join(jail(m), "processed", "after.csv.errors.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(errs), campaignd.RowOptedOut); n != 6 {
		t.Fatalf("errors file lists %d opted-out rows, want 6:\n%s", n, errs)
	}

	// Removal: a viewer may not, a reason is required, then it works.
	base := webBase(m)
	if code, _ := apiPost(t, base, "DELETE", "/api/v1/suppressions/5500000003?reason=asked", "viewer", ""); code != 403 {
		t.Fatalf("viewer removal = %d, want 403", code)
	}
	if code, _ := apiPost(t, base, "DELETE", "/api/v1/suppressions/5500000003", testAdmin, ""); code != 400 {
		t.Fatalf("removal without a reason = %d, want 400", code)
	}
	if code, body := apiPost(t, base, "DELETE", "/api/v1/suppressions/5500000003?reason=called+to+opt+in", testAdmin, ""); code != 200 {
		t.Fatalf("removal = %d %s", code, body)
	}
	upload(t, m.FTP.Addr(), "again.csv", optoutCSV("Hola otra vez", "", numbers...))
	b = broadcastOf(t, m, "again.csv")
	if b.Counts.OptedOut != 5 || b.Counts.Total != 6 {
		t.Fatalf("after removal: counts %+v, want 5 opted out, 6 messages", b.Counts)
	}
	var audit []campaignd.AuditEntry
	audit, _ = m.DB.AuditLog(0)
	var acts []string
	for _, e := range audit {
		acts = append(acts, e.Action+" "+e.User)
	}
	if got := strings.Join(acts, ","); strings.Count(got, "suppress sms") != 6 || !strings.Contains(got, "unsuppress admin") {
		t.Fatalf("audit: %s", got)
	}

	// Rows are counted just after the broadcast is committed: poll.
	testenv.Eventually(t, 10*time.Second, "metrics", func() bool {
		text := optoutMetrics(t, m)
		for _, want := range []string{
			`campaignd_suppression_list_size 5`,
			`campaignd_mo_received_total{result="keyword"} 7`,
			`campaignd_mo_received_total{result="other"} 1`,
			`campaignd_ingest_rows_total{result="opted_out"} 11`,
		} {
			if !strings.Contains(text, want) {
				t.Logf("/metrics lacks %q", want)
				return false
			}
		}
		return true
	})
}

// A reply that arrives while its broadcast is sending stops the message
// still queued for that number: it settles as suppressed, is never
// submitted, and is in the counts, the export and the day's report as
// SUPPRESSED.
func TestOptoutReplyDuringSend(t *testing.T) {
	c := testConfig(t.TempDir())
	c.SMPP.TPS = 20
	m := MustRunMain(t, c)
	const n = 80
	var numbers []string
	for i := 0; i < n; i++ {
		numbers = append(numbers, nationalNumber(100+i))
	}
	target := nationalNumber(100 + n - 3)
	upload(t, m.FTP.Addr(), "sending.csv", optoutCSV("Promo", "2020-01-01 10:00", numbers...))
	b := broadcastOf(t, m, "sending.csv")
	testenv.Eventually(t, 10*time.Second, "sending started", func() bool { return m.Sim.Stats().Submits >= 5 })
	if err := m.Sim.SendMO(smpp.SimMO{From: "52" + target, To: "28776", Text: "Stop", DataCoding: 8}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "listed", func() bool { return getListed(t, m, "52"+target) != nil })
	if got := m.Sim.Stats().Submits; got >= n-3 {
		t.Skipf("the machine is too slow: %d submitted before the reply was stored", got)
	}
	testenv.Eventually(t, 30*time.Second, "completed and settled", func() bool {
		b = getBroadcast(t, m, b.ID)
		c := b.Counts
		return b.Status == campaignd.StatusCompleted && c.Delivered+c.Suppressed == c.Total
	})
	if b.Counts.Suppressed != 1 || b.Counts.Delivered != n-1 {
		t.Fatalf("counts %+v: want 1 suppressed, %d delivered", b.Counts, n-1)
	}
	if got := m.Sim.Stats().Submits; got != n-1 {
		t.Fatalf("%d submits, want %d (the suppressed message was sent)", got, n-1)
	}
	get := func(path string) string {
		req, _ := http.NewRequest("GET", webBase(m)+path, nil)
		req.SetBasicAuth(testAdmin, testPass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		return string(body)
	}
	export := get(fmt.Sprintf("/api/v1/broadcasts/%d/messages.csv", b.ID))
	for _, line := range strings.Split(export, "\n") {
		if strings.Contains(line, target) && !strings.Contains(line, string(campaignd.StateSuppressed)) {
			t.Fatalf("export line of %s: %s", target, line)
		}
	}
	if strings.Count(export, string(campaignd.StateSuppressed)) != 1 {
		t.Fatalf("export:\n%s", export)
	}
	day := time.Now().In(m.loc).Format("2006-01-02")
	report := get("/api/v1/reports/" + day + ".csv")
	var found bool
	for _, line := range strings.Split(report, "\n") {
		if strings.Contains(line, ","+target+",") {
			found = true
			f := strings.Split(line, ",")
			if f[5] != "SUPPRESSED" || f[4] == "" {
				t.Fatalf("report line %q: want Delivery Status SUPPRESSED with its settle time", line)
			}
		}
	}
	if !found || strings.Count(report, "SUPPRESSED") != 1 || strings.Count(report, "DELIVRD") != n-1 {
		t.Fatalf("report of %s:\n%s", day, report)
	}
	if text := optoutMetrics(t, m); !strings.Contains(text, "campaignd_messages_suppressed_total 1") {
		t.Errorf("/metrics lacks the suppressed message")
	}
}

// A list of 100,000 numbers dropped over real FTP into suppressions/ is
// imported in bulk, its bad lines reported back over FTP, and it is listed
// in Files; a number on it is skipped by the next upload.
func TestOptoutFTPImport(t *testing.T) {
	m := MustRunMain(t, testConfig(t.TempDir()))
	var b strings.Builder
	b.WriteString("telefono;nombre\n")
	const n = 100_000 // a REPEP-sized list
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "+52 55 %04d %04d;x\n", i/10000, i%10000)
	}
	b.WriteString("12345;corto\n55-ABC;letras\n")
	fc := ftpLogin(t, m.FTP.Addr())
	if err := fc.Stor("suppressions/repep.csv.part", strings.NewReader(b.String())); err != nil {
		t.Fatal(err)
	}
	if err := fc.Rename("suppressions/repep.csv.part", "suppressions/repep.csv"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "list imported", func() bool { return fileExists(filepath.Join(jail(m), "processed", "repep.csv")) })
	if got := suppressionTotal(t, m); got != n {
		t.Fatalf("list holds %d, want %d", got, n)
	}
	// The result, read back over FTP like any upload's.
	r, err := fc.Retr("processed/repep.csv.errors.csv")
	if err != nil {
		t.Fatal(err)
	}
	errs, _ := io.ReadAll(r)
	r.Close()
	if strings.Count(string(errs), campaignd.RowInvalidRecipient) != 2 || !strings.Contains(string(errs), "12345") {
		t.Fatalf("errors file:\n%s", errs)
	}
	var files struct {
		Files []struct {
			Path     string `json:"path"`
			Outcome  string `json:"outcome"`
			Imported int    `json:"imported"`
		} `json:"files"`
	}
	if code := apiGet(t, webBase(m), "/api/v1/files", &files); code != 200 {
		t.Fatalf("GET files: %d", code)
	}
	if len(files.Files) == 0 || files.Files[0].Outcome != campaignd.UploadAccepted || files.Files[0].Imported != n {
		t.Fatalf("files: %+v", files)
	}
	if s := getListed(t, m, "525500000007"); s == nil || s.Reason != campaignd.SuppressImport || !strings.Contains(s.Source, "repep.csv") {
		t.Fatalf("imported entry: %+v", s)
	}
	// A list with no valid number is rejected, with its reason.
	upload(t, m.FTP.Addr(), "suppressions/bad.csv", "numero\nabc\n")
	testenv.Eventually(t, 20*time.Second, "bad list rejected", func() bool { return fileExists(filepath.Join(jail(m), "rejected", "bad.csv.errors.csv")) })
	upload(t, m.FTP.Addr(), "next.csv", optoutCSV("Hola", "", nationalNumber(7), "5512345678"))
	if bc := broadcastOf(t, m, "next.csv"); bc.Counts.OptedOut != 1 || bc.Counts.Total != 1 {
		t.Fatalf("upload after import: %+v", bc.Counts)
	}
}
