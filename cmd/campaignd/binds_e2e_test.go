package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
	"campaignd/smpp"
)

func readyDetail(t *testing.T, m *Main) map[string]string {
	t.Helper()
	resp, err := http.Get(webBase(m) + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Detail map[string]string `json:"detail"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("readyz %s: %v", body, err)
	}
	return r.Detail
}

// TestBindsEndToEnd sends a broadcast over 4 transceivers and over 2 transmitter + receiver pairs
// to the bundled simulator; /readyz names every bind and its state.
func TestBindsEndToEnd(t *testing.T) {
	for _, tt := range []struct {
		bind  string
		binds int
		names []string
	}{
		{"transceiver", 4, []string{"transceiver#1", "transceiver#2", "transceiver#3", "transceiver#4"}},
		{"pair", 2, []string{"transmitter#1", "receiver#1", "transmitter#2", "receiver#2"}},
		{"transceiver", 1, []string{"transceiver"}},
	} {
		t.Run(fmt.Sprintf("%s-%d", tt.bind, tt.binds), func(t *testing.T) {
			c := testConfig(t.TempDir())
			c.SMPP.Bind, c.SMPP.Binds, c.SMPP.Window = tt.bind, tt.binds, 5
			m := MustRunMain(t, c)
			testenv.Eventually(t, 20*time.Second, "every bind in /readyz bound", func() bool {
				d := readyDetail(t, m)
				for _, n := range tt.names {
					if d["smsc_"+n] != "bound" {
						return false
					}
				}
				return d["smsc"] == "bound" && len(d) == 3+len(tt.names)
			})
			const rows = 600
			upload(t, m.FTP.Addr(), "binds.csv", csvFile("2020-01-01", rows))
			b := broadcastOf(t, m, "binds.csv")
			var got apiBroadcast
			testenv.Eventually(t, 60*time.Second, "every message delivered", func() bool {
				got = getBroadcast(t, m, b.ID)
				return got.Counts.Delivered == rows
			})
			if got.Status != campaignd.StatusCompleted || got.Counts.Submitted != 0 || got.Counts.Queued != 0 {
				t.Fatalf("broadcast %+v", got)
			}
		})
	}
}

func TestBindsConfig(t *testing.T) {
	for _, tt := range []struct{ toml, env, want string }{
		{toml: "[smpp]\nbinds = 0\n", want: "smpp.binds"},
		{toml: "[smpp]\nbinds = 17\n", want: "smpp.binds"},
		{env: "CAMPAIGND_SMPP_BINDS=-1", want: "smpp.binds"},
		{toml: "[smpp]\nbinds = 4\n"},
		{env: "CAMPAIGND_SMPP_BINDS=16"},
	} {
		err := loadConfig(t, tt.toml, tt.env)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%q %q: err = %v, want %q", tt.toml, tt.env, err, tt.want)
		}
	}
	if DefaultConfig().SMPP.Binds != 1 {
		t.Fatal("smpp.binds does not default to 1")
	}
}

// TestConsoleShowsBinds: a sending broadcast's page names each bind and its state.
func TestConsoleShowsBinds(t *testing.T) {
	c := testConfig(t.TempDir())
	c.SMPP.Binds, c.SMPP.TPS = 3, 20 // slow: it is still sending when the page is read
	c.Web.Language = "en"            // the page is read in English
	m := MustRunMain(t, c)
	testenv.Eventually(t, 20*time.Second, "binds up", func() bool { return readyDetail(t, m)["smsc_transceiver#3"] == "bound" })
	upload(t, m.FTP.Addr(), "slow.csv", csvFile("2020-01-01", 200))
	b := broadcastOf(t, m, "slow.csv")
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	resp, err := client.PostForm(webBase(m)+"/login", url.Values{"username": {testAdmin}, "password": {testPass}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = client.Get(fmt.Sprintf("%s/broadcasts/%d", webBase(m), b.ID))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := "SMSC binds: transceiver#1 bound, transceiver#2 bound, transceiver#3 bound"
	if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
		t.Fatalf("%d: page lacks %q:\n%s", resp.StatusCode, want, body)
	}
}

// TestCrashWhileSendingOverBinds is TestCrashWhileSending with 3 binds: after kill -9 at random points
// every message is delivered and duplicates stay within smpp.window × smpp.binds per crash.
func TestCrashWhileSendingOverBinds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	sim := smpp.NewSimulator(smpp.SimOptions{Listen: "127.0.0.1:0", DeliveredPercent: 100, ReceiptDelay: 20 * time.Millisecond, TrackDests: true})
	if err := sim.Open(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	c := testConfig(t.TempDir())
	c.SMPP.Addr = sim.Addr()
	c.SMPP.TPS, c.SMPP.Window, c.SMPP.Binds = 1500, 10, 3
	cfg := writeConfig(t, c)
	const rows = 4000
	p := startProc(t, cfg)
	upload(t, p.ftp, "crash.csv", csvFile("2020-01-01", rows))
	crashes := 0
	for range 3 {
		time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond)
		p.kill()
		crashes++
		p = startProc(t, cfg)
	}
	base := "http://" + p.web
	var l apiList
	testenv.Eventually(t, 30*time.Second, "the broadcast", func() bool { apiGet(t, base, "/api/v1/broadcasts", &l); return l.Total == 1 })
	var b apiBroadcast
	testenv.Eventually(t, 90*time.Second, "every message delivered", func() bool {
		apiGet(t, base, fmt.Sprintf("/api/v1/broadcasts/%d", l.Broadcasts[0].ID), &b)
		return b.Counts.Delivered == rows
	})
	st := sim.Stats()
	dups := duplicates(st)
	bar := c.SMPP.Window * c.SMPP.Binds * crashes
	t.Logf("%d crashes: %d messages, %d submits, %d duplicates (bar %d)", crashes, rows, st.Submits, dups, bar)
	if len(st.PerDest) != rows || dups > bar {
		t.Fatalf("%d recipients (want %d), %d duplicates (bar %d)", len(st.PerDest), rows, dups, bar)
	}
}
