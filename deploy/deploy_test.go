// Package deploy_test checks the monitoring kit: every expression of the
// Grafana dashboard and of the alert rules names only metrics campaignd
// exports (SPEC §8), and every such metric is on the dashboard.
package deploy_test

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"

	"campaignd/internal/testenv"
	cm "campaignd/metrics"
)

// metrics are the series package metrics exports, with their type, read
// from a real scrape so that the kit cannot drift from the code.
var metrics = exported()

func exported() map[string]string {
	rec := httptest.NewRecorder()
	cm.New(nil).Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := map[string]string{}
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[1] == "TYPE" && strings.HasPrefix(f[2], "campaignd_") {
			out[f[2]] = f[3]
		}
	}
	return out
}

// TestReadmeDocumentsEveryMetric: SPEC §8 asks for every metric documented.
func TestReadmeDocumentsEveryMetric(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(metrics) < 17 {
		t.Fatalf("only %d campaignd metrics scraped", len(metrics))
	}
	for name := range metrics {
		if !strings.Contains(string(readme), "`"+name+"`") {
			t.Errorf("README.md does not document %s", name)
		}
	}
}

var metricName = regexp.MustCompile(`\bcampaignd_[a-z0-9_]+`)

// check returns the campaignd metrics expr uses, failing on unknown ones
// and on histograms used without a _bucket, _sum or _count suffix.
func check(t *testing.T, where, expr string) []string {
	t.Helper()
	names := metricName.FindAllString(expr, -1)
	if len(names) == 0 && !strings.Contains(expr, "up{") {
		t.Errorf("%s: %q uses no campaignd metric", where, expr)
	}
	var out []string
	for _, n := range names {
		base := n
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b := strings.TrimSuffix(n, suffix); b != n && metrics[b] == "histogram" {
				base = b
			}
		}
		switch typ, ok := metrics[base]; {
		case !ok:
			t.Errorf("%s: unknown metric %s in %q", where, n, expr)
		case typ == "histogram" && base == n:
			t.Errorf("%s: histogram %s used without _bucket/_sum/_count in %q", where, n, expr)
		case typ == "counter" && !regexp.MustCompile(`(rate|increase)\([^()]*\b`+n+`\b`).MatchString(expr):
			t.Errorf("%s: counter %s used without rate() or increase() in %q", where, n, expr)
		}
		out = append(out, base)
	}
	return out
}

type panel struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func TestDashboardCoversEveryMetric(t *testing.T) {
	b, err := os.ReadFile("grafana/campaignd-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string  `json:"title"`
		UID    string  `json:"uid"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard is not valid JSON: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard without title, uid or panels")
	}
	used := map[string]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				for _, n := range check(t, "panel "+p.Title, tg.Expr) {
					used[n] = true
				}
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for n := range metrics {
		if !used[n] {
			t.Errorf("metric %s is on no dashboard panel", n)
		}
	}
}

// alertExprs extracts alert names and expressions from alerts.yml (single
// line or "|" blocks), enough for this file's shape without a YAML parser.
func alertExprs(t *testing.T, text string) map[string]string {
	t.Helper()
	out := map[string]string{}
	lines := strings.Split(text, "\n")
	alert := ""
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		switch {
		case strings.HasPrefix(l, "- alert:"):
			alert = strings.TrimSpace(strings.TrimPrefix(l, "- alert:"))
		case strings.HasPrefix(l, "expr:"):
			expr := strings.TrimSpace(strings.TrimPrefix(l, "expr:"))
			if expr == "|" {
				indent := len(lines[i+1]) - len(strings.TrimLeft(lines[i+1], " "))
				var block []string
				for i+1 < len(lines) && len(lines[i+1])-len(strings.TrimLeft(lines[i+1], " ")) >= indent && strings.TrimSpace(lines[i+1]) != "" {
					i++
					block = append(block, strings.TrimSpace(lines[i]))
				}
				expr = strings.Join(block, " ")
			}
			out[alert] = expr
		}
	}
	return out
}

func TestAlertRules(t *testing.T) {
	b, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	exprs := alertExprs(t, string(b))
	var names []string
	for name, expr := range exprs {
		names = append(names, name)
		check(t, "alert "+name, expr)
	}
	sort.Strings(names)
	for _, want := range []string{"CampaigndSMSCUnbound", "CampaigndReportPushFailing", "CampaigndReportLastPushTooOld",
		"CampaigndIngestRejectedFile", "CampaigndIngestManyInvalidRows", "CampaigndTimersLate", "CampaigndReceiptsUnmatched"} {
		if _, ok := exprs[want]; !ok {
			t.Errorf("alert %s missing (have %v)", want, names)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Missing(t, "promtool not installed (apt-get install prometheus); rules checked by name only")
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
