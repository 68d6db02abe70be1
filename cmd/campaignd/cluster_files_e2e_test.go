package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"campaignd"
	"campaignd/internal/testenv"
)

// TestClusterSharedUploads: two nodes on one real PostgreSQL keep the FTP
// users' files in it. An upload taken by the follower B is listed the same
// on A and B and ingested by the leader A, whose results (processed/ and
// the errors file) both nodes serve; nothing is on either node's disk. An
// upload B took before going away, while A's ingest was held back, is
// ingested by A from the database.
func TestClusterSharedUploads(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	pg := testenv.StartPostgres(t)
	dsn := pg.NewDatabase(t)
	config := func(node string) Config {
		c := testConfig(t.TempDir())
		c.Store = StoreConfig{Engine: "postgres", DSN: dsn, Node: node}
		return c
	}
	a := MustRunMain(t, config("node-a"))
	testenv.Eventually(t, 15*time.Second, "node A leads", func() bool { return a.cluster.elector.IsLeader() })
	b := MustRunMain(t, config("node-b"))
	testenv.Eventually(t, 15*time.Second, "node B follows A", func() bool {
		d := readyDetail(t, b)
		return d["role"] == "follower" && d["leader"] == "node-a"
	})
	onA, onB := ftpLogin(t, a.FTP.Addr()), ftpLogin(t, b.FTP.Addr())

	// A file that triggers nothing, uploaded to B: the same listing and
	// bytes on both nodes.
	upload(t, b.FTP.Addr(), "notes.txt", "hola\n")
	la, lb := ftpList(t, onA, "/"), ftpList(t, onB, "/")
	if !slices.Equal(la, lb) || !slices.Contains(la, "notes.txt 5 file") {
		t.Fatalf("LIST / on A = %v, on B = %v; want the same, with notes.txt", la, lb)
	}
	if got := testenv.Retr(t, onA, "notes.txt"); got != "hola\n" {
		t.Fatalf("RETR on A = %q", got)
	}

	// A broadcast file with one bad row, uploaded to the follower: the
	// leader ingests it; both nodes serve the result and its errors file.
	content := csvFile("", 20) + "=1+2,hola,1,Prueba,\n"
	upload(t, b.FTP.Addr(), "shared.csv", content)
	bc := broadcastOf(t, b, "shared.csv")
	if bc.Counts.Total != 20 {
		t.Fatalf("broadcast of shared.csv has %d messages, want 20", bc.Counts.Total)
	}
	testenv.Eventually(t, 10*time.Second, "processed/ on B", func() bool {
		l := ftpList(t, onB, "/processed")
		return slices.Contains(l, fmt.Sprintf("shared.csv %d file", len(content))) &&
			slices.ContainsFunc(l, func(s string) bool { return strings.HasPrefix(s, "shared.csv.errors.csv ") })
	})
	if la, lb := ftpList(t, onA, "/processed"), ftpList(t, onB, "/processed"); !slices.Equal(la, lb) {
		t.Fatalf("LIST /processed on A = %v, on B = %v", la, lb)
	}
	if got := testenv.Retr(t, onA, "/processed/shared.csv"); got != content {
		t.Fatal("processed/shared.csv on A differs from what was uploaded to B")
	}
	if errs := testenv.Retr(t, onB, "/processed/shared.csv.errors.csv"); !strings.Contains(errs, "=1+2") {
		t.Fatalf("errors file on B lacks the bad row:\n%s", errs)
	}
	for _, m := range []*Main{a, b} {
		if _, err := os.Stat(filepath.Join(m.Config.DataDir, "ftp")); err == nil {
			t.Errorf("%s keeps FTP files on disk", m.cluster.name)
		}
	}

	// B takes an upload and goes away before anyone ingested it (A's
	// ingest is held); A ingests it from the database once let go.
	a.ingestHold.Lock()
	var release sync.Once
	let := func() { release.Do(a.ingestHold.Unlock) }
	t.Cleanup(let)
	late := csvFile("", 7)
	upload(t, b.FTP.Addr(), "late.csv", late)
	if err := b.Close(); err != nil {
		t.Logf("closing B: %v", err)
	}
	jobs, err := a.DB.Jobs()
	if err != nil || len(jobs) != 1 || jobs[0].Upload.Path != "/late.csv" {
		t.Fatalf("jobs after B left = %v (%v), want late.csv's", len(jobs), err)
	}
	let()
	lb2 := broadcastOf(t, a, "late.csv")
	if lb2.Counts.Total != 7 {
		t.Fatalf("late.csv ingested with %d messages, want 7", lb2.Counts.Total)
	}
	testenv.Eventually(t, 10*time.Second, "processed/late.csv on A", func() bool {
		return slices.Contains(ftpList(t, onA, "/processed"), fmt.Sprintf("late.csv %d file", len(late)))
	})
	if got := testenv.Retr(t, onA, "/processed/late.csv"); got != late {
		t.Fatal("processed/late.csv differs from what B took")
	}
	if f := getBroadcast(t, a, lb2.ID); f.Status != campaignd.StatusPending {
		t.Fatalf("late.csv's broadcast is %s, want pending", f.Status)
	}
}

// ftpList is a directory's entries as "name size type", sorted.
func ftpList(t *testing.T, c *ftp.ServerConn, dir string) []string {
	t.Helper()
	entries, err := c.List(dir)
	if err != nil {
		t.Fatalf("LIST %s: %v", dir, err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, fmt.Sprintf("%s %d %s", e.Name, e.Size, e.Type))
	}
	slices.Sort(out)
	return out
}
