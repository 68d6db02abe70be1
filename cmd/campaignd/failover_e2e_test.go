package main

import (
	"errors"
	"fmt"
	"net/textproto"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
)

// TestFailoverRealBinary is issue 13's failover test with the real binary:
// three `campaignd serve` processes (nodes a, b, c) on one real PostgreSQL
// and one `campaignd smsc-sim` process. Files are uploaded over FTP through
// the two followers, one dated in the past (it sends at once), the other
// sent from a follower's API (relayed to the leader). The leader is killed
// with SIGKILL mid-send; another node leads within 15 s, every message
// settles, the duplicates the simulator counts stay within smpp.window ×
// smpp.binds, and a surviving node's console names the new leader and
// shows the progress moving. Then PostgreSQL is crashed and restarted under
// the nodes: they notice, recover by themselves (one leader, /readyz 200 on
// every node), and a new upload is accepted and sent.
func TestFailoverRealBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary, starts PostgreSQL and four processes, kills the leader")
	}
	pg := testenv.StartPostgres(t)
	dsn := pg.NewDatabase(t)
	bin := buildCampaignd(t)
	sim := startSimProcess(t, bin, "--delivered-percent", "100", "--receipt-delay", "100ms")

	const (
		tps    = 120 // the sending of phase 1 lasts about 30 s
		window = 10
		binds  = 2
		rows1  = 2000 // failover-past.csv: dated in the past, sends at once
		rows2  = 2000 // failover-send.csv: pending, sent through the API
		rows3  = 300  // after-restart.csv
	)
	names := []string{"a", "b", "c"}
	nodes := make([]*node, len(names))
	for i, name := range names {
		c := testConfig(filepath.Join(t.TempDir(), "data"))
		c.Store = StoreConfig{Engine: "postgres", DSN: dsn, Node: name}
		// Each node announces its own passive range (deploy/ha.md), below
		// Linux's ephemeral ports.
		c.FTP.PassivePorts = fmt.Sprintf("%d-%d", 21000+i*500, 21000+i*500+499)
		c.SMPP.Addr, c.SMPP.SystemID, c.SMPP.Password = sim.addr, "campaignd", "secret"
		c.SMPP.TPS, c.SMPP.Window, c.SMPP.Binds = tps, window, binds
		nodes[i] = startNode(t, bin, name, writeConfig(t, c))
	}
	byName := func(name string) *node {
		for _, n := range nodes {
			if n.name == name {
				return n
			}
		}
		t.Fatalf("no node %q", name)
		return nil
	}
	alive := func() []*node {
		var out []*node
		for _, n := range nodes {
			if !n.killed {
				out = append(out, n)
			}
		}
		return out
	}
	// oneLeader waits until exactly one live node leads, every live node is
	// ready and names it, and the campaignd_leader gauges agree.
	oneLeader := func(d time.Duration, what string) *node {
		t.Helper()
		var v view
		var leader string
		waitFor(t, d, what, func() bool {
			v = look(alive())
			var ok bool
			if leader, ok = v.settledOn(); !ok {
				return false
			}
			for _, n := range alive() {
				want := "0"
				if n.name == leader {
					want = "1"
				}
				if n.leaderMetric() != want {
					return false
				}
			}
			return true
		})
		t.Logf("%s: node %s leads (%s)", what, leader, v)
		return byName(leader)
	}
	followers := func(leader *node) []*node {
		var out []*node
		for _, n := range alive() {
			if n != leader {
				out = append(out, n)
			}
		}
		return out
	}

	// Phase 1: one leader; uploads through the two followers.
	leader := oneLeader(30*time.Second, "three nodes started")
	fs := followers(leader)
	if len(fs) != 2 {
		t.Fatalf("%d followers, want 2", len(fs))
	}
	upload(t, fs[0].ftp, "failover-past.csv", numberedCSV("2020-01-01", 0, rows1))
	upload(t, fs[1].ftp, "failover-send.csv", numberedCSV("", 100_000, rows2))
	var b1, b2 apiBroadcast
	waitFor(t, 30*time.Second, "both uploads ingested", func() bool {
		var ok1, ok2 bool
		b1, ok1 = broadcastByFile(t, leader.base(), "failover-past.csv")
		b2, ok2 = broadcastByFile(t, leader.base(), "failover-send.csv")
		return ok1 && ok2 && b1.Counts.Total == rows1 && b2.Counts.Total == rows2
	})
	if b2.Status != campaignd.StatusPending {
		t.Fatalf("failover-send.csv is %s; want pending", b2.Status)
	}
	// Sent from the other follower's API: relayed to the leader.
	path2 := fmt.Sprintf("/api/v1/broadcasts/%d", b2.ID)
	if code, body := apiPost(t, fs[0].base(), "POST", path2+"/send", testAdmin, ""); code != 200 || !strings.Contains(body, `"sending"`) {
		t.Fatalf("send through follower %s = %d %s", fs[0].name, code, body)
	}

	// SIGKILL the leader mid-send.
	const total = rows1 + rows2
	waitFor(t, 60*time.Second, "the leader sending", func() bool { return sim.Stats(t).Submits >= 600 })
	killedAt := time.Now()
	leader.kill()
	leader.killed = true
	atKill := sim.Stats(t)
	var k1, k2 apiBroadcast
	apiGetQuiet(fs[0].base(), fmt.Sprintf("/api/v1/broadcasts/%d", b1.ID), &k1)
	apiGetQuiet(fs[0].base(), path2, &k2)
	t.Logf("killed leader %s after %d submits of %d messages; recorded then: %+v, %+v", leader.name, atKill.Submits, total, k1.Counts, k2.Counts)
	if atKill.Submits >= total {
		t.Fatalf("the leader had submitted all %d messages (%d submits) before it was killed: not mid-send", total, atKill.Submits)
	}
	var newLeader string
	waitFor(t, 40*time.Second, "a surviving node to lead", func() bool {
		if v := look(alive()); len(v.leaders) > 0 {
			newLeader = v.leaders[0]
			return true
		}
		return false
	})
	takeover := time.Since(killedAt)
	t.Logf("takeover: node %s leads %.1f s after the SIGKILL of %s", newLeader, takeover.Seconds(), leader.name)
	if takeover > 15*time.Second {
		t.Errorf("takeover took %s; the bar is 15 s", takeover.Round(100*time.Millisecond))
	}
	leader = oneLeader(30*time.Second, "after the kill")
	if leader.name != newLeader {
		t.Fatalf("node %s led first after the kill, then %s", newLeader, leader.name)
	}

	// The console of a surviving follower names the new leader and shows the
	// progress of a sending broadcast moving.
	watcher := followers(leader)[0]
	con := loginConsole(t, watcher.base())
	first := map[uint64]int{}
	waitFor(t, 60*time.Second, "the console on "+watcher.name+" showing progress", func() bool {
		for _, id := range []uint64{b1.ID, b2.ID} {
			page := con.page(t, fmt.Sprintf("/broadcasts/%d", id))
			m := sendingNode.FindStringSubmatch(page)
			if m == nil || !strings.HasSuffix(strings.TrimSpace(m[1]), ": "+leader.name) {
				return false // the follower's view of the lease is refreshed every 2 s
			}
			p := progressBar.FindStringSubmatch(page)
			if p == nil {
				continue // not sending (yet, or any more)
			}
			v, _ := strconv.Atoi(p[2])
			if was, ok := first[id]; !ok {
				first[id] = v
			} else if v > was {
				t.Logf("console on %s: %q; broadcast %d's progress moved from %d to %d of %s", watcher.name, strings.TrimSpace(m[1]), id, was, v, p[1])
				return true
			}
		}
		return false
	})

	// Every message settles; the simulator counts the duplicates.
	for _, id := range []uint64{b1.ID, b2.ID} {
		var b apiBroadcast
		waitFor(t, 120*time.Second, fmt.Sprintf("broadcast %d settled", id), func() bool {
			if apiGetQuiet(leader.base(), fmt.Sprintf("/api/v1/broadcasts/%d", id), &b) != 200 {
				return false
			}
			return b.Status == campaignd.StatusCompleted && b.Counts.Settled() == b.Counts.Total
		})
		if b.Counts.Delivered != b.Counts.Total {
			t.Errorf("broadcast %d: counts %+v; want every message delivered (the simulator delivers 100 %%)", id, b.Counts)
		}
	}
	st := sim.Stats(t)
	dups, bar := duplicates(st), window*binds
	t.Logf("duplicates: %d submits for %d messages to %d recipients: %d duplicates after 1 failover (bar smpp.window × smpp.binds = %d)",
		st.Submits, total, len(st.PerDest), dups, bar)
	if len(st.PerDest) != total {
		t.Errorf("%d recipients got a message; want %d", len(st.PerDest), total)
	}
	// What the leader had submitted but not yet recorded when it died is
	// sent again by the next one; a worker takes its next message only once
	// its last outcome is written, so that is at most the submits in flight:
	// smpp.window per bind.
	if dups > bar {
		recorded := k1.Counts.Submitted + k1.Counts.Settled() + k2.Counts.Submitted + k2.Counts.Settled()
		t.Errorf("%d duplicates after one failover, bar smpp.window × smpp.binds = %d (%d submits were unrecorded at the kill); duplicated destinations: %s",
			dups, bar, max(int64(atKill.Submits)-recorded, 0), duplicatedRanges(st))
	}

	// Phase 2: PostgreSQL crashes and comes back under the nodes.
	stoppedAt := time.Now()
	pg.Stop()
	waitFor(t, 30*time.Second, "every node to report the database gone", func() bool {
		for _, c := range look(alive()).codes {
			if c == 200 {
				return false
			}
		}
		return true
	})
	// Meanwhile an upload is refused with 451 ("local error in
	// processing": try again), not a 550 the partner's client would take
	// for a permanent refusal, and nothing is kept.
	outage := ftpLogin(t, alive()[0].ftp)
	err := outage.Stor("during-outage.csv", strings.NewReader(numberedCSV("", 300_000, 10)))
	if te := (*textproto.Error)(nil); !errors.As(err, &te) || te.Code != 451 || !strings.Contains(te.Msg, "try again later") {
		t.Errorf("STOR while PostgreSQL is down: %v; want a 451 saying to try again later", err)
	}
	pg.Start()
	restartedAt := time.Now()
	t.Logf("PostgreSQL down for %.1f s", restartedAt.Sub(stoppedAt).Seconds())
	leader = oneLeader(60*time.Second, "after the database restart")
	t.Logf("recovery: one leader and every node ready %.1f s after PostgreSQL was back", time.Since(restartedAt).Seconds())

	// A new upload through a follower is accepted and sent.
	via := followers(leader)[0]
	upload(t, via.ftp, "after-restart.csv", numberedCSV("2020-01-01", 200_000, rows3))
	var b3 apiBroadcast
	waitFor(t, 30*time.Second, "after-restart.csv ingested", func() bool {
		var ok bool
		b3, ok = broadcastByFile(t, via.base(), "after-restart.csv")
		return ok
	})
	waitFor(t, 60*time.Second, "after-restart.csv settled", func() bool {
		if apiGetQuiet(via.base(), fmt.Sprintf("/api/v1/broadcasts/%d", b3.ID), &b3) != 200 {
			return false
		}
		return b3.Status == campaignd.StatusCompleted && b3.Counts.Settled() == b3.Counts.Total
	})
	if b3.Counts.Total != rows3 || b3.Counts.Delivered != rows3 {
		t.Errorf("after-restart.csv: counts %+v; want %d delivered", b3.Counts, rows3)
	}
	st = sim.Stats(t)
	if len(st.PerDest) != total+rows3 {
		t.Errorf("%d recipients in all; want %d", len(st.PerDest), total+rows3)
	}
	if d := duplicates(st); d != dups {
		t.Errorf("%d duplicates after the database restart, %d before: the new upload was sent twice to someone", d, dups)
	}
}
