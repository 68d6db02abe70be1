package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"campaignd/internal/testenv"
)

// TestReportOnceAcrossFailover: the leader dies (SIGKILL) while it pushes a
// day's report into a Payback server that stalls; another node takes over
// and pushes that report once, the same bytes, without producing it again,
// although the archive the first leader wrote is on the first leader's disk.
//
// The day is made to end by the time zone (as in TestKilledDuringReportPush):
// the messages settle on day D with the nodes in UTC-12; the nodes that
// take over run in UTC+14, where D's report time has passed.
func TestReportOnceAcrossFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary, starts PostgreSQL and kills the leader")
	}
	pg := testenv.StartPostgres(t)
	dsn := pg.NewDatabase(t)
	bin := buildCampaignd(t)
	sim := startSimProcess(t, bin, "--delivered-percent", "100", "--receipt-delay", "20ms")

	// Payback's server, stalled at first.
	addr, accepted, stall := stalledServer(t)

	config := func(name, tz string, i int) string {
		c := testConfig(filepath.Join(t.TempDir(), "data"))
		c.Store = StoreConfig{Engine: "postgres", DSN: dsn, Node: name}
		c.FTP.PassivePorts = fmt.Sprintf("%d-%d", 23000+i*200, 23000+i*200+199)
		c.SMPP.Addr, c.SMPP.SystemID, c.SMPP.Password = sim.addr, "campaignd", "secret"
		c.Timezone = tz
		c.Report.Time = "00:00"
		c.Report.FTPURL = fmt.Sprintf("ftp://payback:%s@%s/", testPass, addr)
		return writeConfig(t, c)
	}
	leads := func(n *node) bool {
		code, d := n.ready()
		return code == 200 && d["role"] == "leader"
	}

	// Day D in UTC-12: one node sends a file dated in the past.
	first := startNode(t, bin, "west", config("west", "Etc/GMT+12", 0))
	waitFor(t, 30*time.Second, "node west leads", func() bool { return leads(first) })
	notNearMidnight(t, utcMinus12)
	upload(t, first.ftp, "day.csv", numberedCSV("2020-01-01", 0, 3))
	waitFor(t, 30*time.Second, "every message delivered", func() bool {
		b, ok := broadcastByFile(t, first.base(), "day.csv")
		return ok && b.Counts.Delivered == 3
	})
	day := time.Now().In(utcMinus12)
	dayText, name := day.Format("2006-01-02"), "report_"+day.Format("20060102")+".csv"
	first.kill()
	first.killed = true

	// UTC+14, where D is over: node a leads, produces D's report and pushes
	// it into the stalled server; node b follows.
	a := startNode(t, bin, "a", config("a", "Etc/GMT-14", 1))
	waitFor(t, 30*time.Second, "node a leads", func() bool { return leads(a) })
	b := startNode(t, bin, "b", config("b", "Etc/GMT-14", 2))
	waitFor(t, 15*time.Second, "node b follows a", func() bool {
		code, d := b.ready()
		return code == 200 && d["role"] == "follower" && d["leader"] == "a"
	})
	select {
	case <-accepted:
	case <-time.After(30 * time.Second):
		t.Fatal("node a made no push attempt")
	}
	before, ok := reportOf(t, b, dayText)
	if !ok || before.SHA256 == "" || before.PushState == "pushed" {
		t.Fatalf("node b sees D's report as %+v (found %v); want it produced by a, not pushed", before, ok)
	}
	a.kill()
	a.killed = true
	killedAt := time.Now()
	stall()

	// Payback answers again, on the same address.
	payback, _ := startPayback(t, addr)

	waitFor(t, 15*time.Second, "node b leads", func() bool { return leads(b) })
	t.Logf("node b leads %s after the SIGKILL of a", time.Since(killedAt).Round(100*time.Millisecond))
	pushed := filepath.Join(payback, "payback", name)
	waitFor(t, 60*time.Second, "D's report pushed by node b", func() bool {
		r, ok := reportOf(t, b, dayText)
		return ok && r.PushState == "pushed" && fileExists(pushed)
	})
	time.Sleep(3 * time.Second) // a second push would come now

	got, err := os.ReadFile(pushed)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(got)), "\n"); len(lines) != 4 || strings.Count(string(got), ",DELIVRD,") != 3 {
		t.Fatalf("pushed report:\n%s", got)
	}
	after, _ := reportOf(t, b, dayText)
	sum := sha256.Sum256(got)
	if hex.EncodeToString(sum[:]) != before.SHA256 || after.SHA256 != before.SHA256 {
		t.Fatalf("pushed %x; node a produced %s; recorded now %s: the report was produced again differently", sum, before.SHA256, after.SHA256)
	}
	if !after.ProducedAt.Equal(before.ProducedAt) || after.Attempts != 1 {
		t.Fatalf("report after the failover %+v; before %+v: want produced once (same time) and pushed at the first attempt", after, before)
	}
	// Every node's log: D's report produced once (by a), pushed once (by b).
	produced, pushes := 0, 0
	for _, n := range []*node{first, a, b} {
		log, _ := os.ReadFile(n.logPath)
		for _, l := range strings.Split(string(log), "\n") {
			if !strings.Contains(l, "day="+dayText) {
				continue
			}
			if strings.Contains(l, `"report: produced"`) {
				produced++
			}
			if strings.Contains(l, `"report: pushed"`) {
				pushes++
			}
		}
	}
	if produced != 1 || pushes != 1 {
		t.Fatalf("D's report produced %d times and pushed %d times across the nodes' logs; want once each", produced, pushes)
	}
}

// reportOf reads day's report record through n's API.
func reportOf(t *testing.T, n *node, day string) (reportRecord, bool) {
	t.Helper()
	var l struct {
		Reports []reportRecord `json:"reports"`
	}
	if apiGetQuiet(n.base(), "/api/v1/reports", &l) != 200 {
		return reportRecord{}, false
	}
	for _, r := range l.Reports {
		if r.Day == day && !r.Partial {
			return r, true
		}
	}
	return reportRecord{}, false
}

type reportRecord struct {
	Day        string    `json:"date"`
	SHA256     string    `json:"sha256"`
	ProducedAt time.Time `json:"produced_at"`
	Partial    bool      `json:"partial"`
	PushState  string    `json:"push_state"`
	Attempts   int       `json:"attempts"`
}
