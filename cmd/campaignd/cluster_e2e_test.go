package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"campaignd"
	"campaignd/internal/testenv"
	"campaignd/smpp"
)

// TestClusterFailover: two nodes on one real PostgreSQL, one SMSC. Node A
// leads; a file uploaded over FTP to node B is sent from B's API (the action
// is relayed to A, which sends); A goes away mid-send, B takes over within
// 15 s and finishes; every message is delivered and the duplicates stay
// within smpp.window × smpp.binds.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	pg := testenv.StartPostgres(t)
	dsn := pg.NewDatabase(t)
	sim := smpp.NewSimulator(smpp.SimOptions{Listen: "127.0.0.1:0", DeliveredPercent: 100, ReceiptDelay: 20 * time.Millisecond, TrackDests: true})
	if err := sim.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	config := func(node string) Config {
		c := testConfig(t.TempDir())
		c.Store = StoreConfig{Engine: "postgres", DSN: dsn, Node: node}
		c.SMPP.Addr, c.SMPP.SystemID, c.SMPP.Password = sim.Addr(), "campaignd", "demo"
		c.SMPP.TPS, c.SMPP.Window = 300, 10
		return c
	}
	a := MustRunMain(t, config("node-a"))
	testenv.Eventually(t, 15*time.Second, "node A leads", func() bool { return a.cluster.elector.IsLeader() })
	b := MustRunMain(t, config("node-b"))
	testenv.Eventually(t, 15*time.Second, "node B sees A lead", func() bool {
		d := readyDetail(t, b)
		return d["role"] == "follower" && d["leader"] == "node-a"
	})
	if d := readyDetail(t, a); d["role"] != "leader" || d["leader"] != "node-a" || d["smsc"] != "bound" {
		t.Fatalf("node A's /readyz = %v; want leader, bound", d)
	}
	if b.cluster.elector.IsLeader() || b.sending().engine != nil {
		t.Fatal("node B sends while A leads")
	}
	if !strings.Contains(optoutMetrics(t, a), "campaignd_leader 1") || !strings.Contains(optoutMetrics(t, b), "campaignd_leader 0") {
		t.Fatal("campaignd_leader is not 1 on A and 0 on B")
	}

	// B's console header names the sending node.
	if page := consolePage(t, b, "/broadcasts"); !strings.Contains(page, `id="cluster-node"`) || !strings.Contains(page, "node-a") {
		t.Fatalf("node B's console does not show node-a leading:\n%s", page)
	}

	// Upload to B (A, the leader, ingests it from the shared files); the
	// broadcast is pending.
	const rows = 1500
	upload(t, b.FTP.Addr(), "cluster.csv", csvFile("", rows))
	bc := broadcastOf(t, b, "cluster.csv")
	if bc.Status != campaignd.StatusPending {
		t.Fatalf("status %s; want pending", bc.Status)
	}
	if got := getBroadcast(t, a, bc.ID); got.Status != campaignd.StatusPending {
		t.Fatalf("node A sees %s; want the same pending broadcast", got.Status)
	}
	// Sent from B's API: relayed to A, which sends.
	path := fmt.Sprintf("/api/v1/broadcasts/%d", bc.ID)
	start := time.Now()
	if code, body := apiPost(t, webBase(b), "POST", path+"/send", testAdmin, ""); code != 200 || !strings.Contains(body, `"sending"`) {
		t.Fatalf("send on node B = %d %s", code, body)
	}
	t.Logf("relayed send answered in %s", time.Since(start))
	testenv.Eventually(t, 20*time.Second, "A sending", func() bool { return getBroadcast(t, b, bc.ID).Counts.Delivered >= 200 })
	if b.sending().engine != nil {
		t.Fatal("node B sends while A leads")
	}

	// A goes away mid-send: B takes over within 15 s and finishes.
	stopped := time.Now()
	if err := a.Close(); err != nil {
		t.Logf("closing A: %v", err)
	}
	testenv.Eventually(t, 15*time.Second, "node B leads", func() bool { return b.cluster.elector.IsLeader() })
	t.Logf("B leads %s after A was closed", time.Since(stopped))
	if d := readyDetail(t, b); d["role"] != "leader" || d["leader"] != "node-b" {
		t.Fatalf("node B's /readyz = %v; want leader", d)
	}
	got := waitSettled(t, b, bc.ID, 60*time.Second)
	st := sim.Stats()
	dups := duplicates(st)
	bar := 10 * 1
	t.Logf("%d messages, %d submits, %d duplicates (bar %d), counts %+v", rows, st.Submits, dups, bar, got.Counts)
	if got.Counts.Delivered != rows || len(st.PerDest) != rows || dups > bar {
		t.Fatalf("delivered %d, %d recipients (want %d), %d duplicates (bar %d)", got.Counts.Delivered, len(st.PerDest), rows, dups, bar)
	}
	// B's operators still act, now on B itself.
	if code, _ := apiPost(t, webBase(b), "POST", path+"/pause", testAdmin, ""); code != 409 {
		t.Fatalf("pause completed on B = %d, want 409 from B's own engine", code)
	}
}

// consolePage logs in to m's console as admin and returns a page.
func consolePage(t *testing.T, m *Main, path string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	resp, err := client.PostForm(webBase(m)+"/login", url.Values{"username": {testAdmin}, "password": {testPass}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = client.Get(webBase(m) + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	return string(body)
}

// TestClusterLeaderLosesDatabase: the leader is cut off from the database
// (its role may no longer log in and its sessions are ended), as a
// partition would: it stops sending on its own as soon as its store stops
// answering, the other node takes over within 15 s and finishes the
// broadcast, and the old leader comes back as a follower.
func TestClusterLeaderLosesDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	pg := testenv.StartPostgres(t)
	dsn := pg.NewDatabase(t)
	admin, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	exec := func(sql string) {
		t.Helper()
		if _, err := admin.Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("CREATE ROLE node_a LOGIN SUPERUSER")
	sim := smpp.NewSimulator(smpp.SimOptions{Listen: "127.0.0.1:0", DeliveredPercent: 100, ReceiptDelay: 20 * time.Millisecond, TrackDests: true})
	if err := sim.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	config := func(node, dsn string) Config {
		c := testConfig(t.TempDir())
		c.Store = StoreConfig{Engine: "postgres", DSN: dsn, Node: node}
		c.SMPP.Addr, c.SMPP.SystemID, c.SMPP.Password = sim.Addr(), "campaignd", "demo"
		c.SMPP.TPS, c.SMPP.Window = 150, 10
		return c
	}
	a := MustRunMain(t, config("node-a", strings.Replace(dsn, "postgres@", "node_a@", 1)))
	testenv.Eventually(t, 15*time.Second, "node A leads", func() bool { return a.cluster.elector.IsLeader() })
	b := MustRunMain(t, config("node-b", dsn))
	testenv.Eventually(t, 15*time.Second, "node B follows", func() bool { return readyDetail(t, b)["leader"] == "node-a" })

	const rows = 1500
	upload(t, b.FTP.Addr(), "cut.csv", csvFile("", rows))
	bc := broadcastOf(t, b, "cut.csv")
	path := fmt.Sprintf("/api/v1/broadcasts/%d", bc.ID)
	if code, body := apiPost(t, webBase(b), "POST", path+"/send", testAdmin, ""); code != 200 {
		t.Fatalf("send on node B = %d %s", code, body)
	}
	testenv.Eventually(t, 20*time.Second, "A sending", func() bool { return getBroadcast(t, b, bc.ID).Counts.Delivered >= 200 })

	cut := time.Now()
	exec("ALTER ROLE node_a NOLOGIN")
	exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'node_a'")
	testenv.Eventually(t, 15*time.Second, "node A stops leading", func() bool { return !a.cluster.elector.IsLeader() })
	t.Logf("A stepped down %s after the cut", time.Since(cut))
	testenv.Eventually(t, 15*time.Second, "node B leads", func() bool { return b.cluster.elector.IsLeader() })
	t.Logf("B leads %s after the cut", time.Since(cut))
	if a.sending().engine != nil {
		t.Fatal("node A still sends after stepping down")
	}
	got := waitSettled(t, b, bc.ID, 60*time.Second)
	st := sim.Stats()
	dups := duplicates(st)
	// What the engine submitted when its writes began to fail is kept and
	// never sent again by A, and A sends nothing more once a write fails;
	// B sends those again: at most smpp.window × smpp.binds.
	bar := 10 * 1
	t.Logf("%d messages, %d submits, %d duplicates (bar %d: smpp.window × smpp.binds)", rows, st.Submits, dups, bar)
	if got.Counts.Delivered != rows || len(st.PerDest) != rows || dups > bar {
		t.Fatalf("delivered %d, %d recipients (want %d), %d duplicates (bar %d)", got.Counts.Delivered, len(st.PerDest), rows, dups, bar)
	}
	// A comes back as a follower.
	exec("ALTER ROLE node_a LOGIN")
	testenv.Eventually(t, 20*time.Second, "node A follows B", func() bool {
		d := readyDetail(t, a)
		return d["role"] == "follower" && d["leader"] == "node-b"
	})
}
