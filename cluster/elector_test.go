package cluster

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"campaignd/internal/testenv"
)

// takeoverBound is the requirement: another node leads within 15 s
// of the leader's death or its loss of the database.
const takeoverBound = 15 * time.Second

// waitOneLeader waits until exactly one of ns leads and every node's view
// names it, and returns it.
func waitOneLeader(t *testing.T, d time.Duration, ns ...*node) *node {
	t.Helper()
	var l *node
	testenv.Eventually(t, d, "exactly one leader that every node sees", func() bool {
		ls := leaders(ns...)
		if len(ls) != 1 {
			return false
		}
		l = ls[0]
		for _, n := range ns {
			v, err := n.e.Leader()
			if err != nil || v.Node != l.name || v.Self != (n == l) {
				return false
			}
		}
		return true
	})
	return l
}

func others(l *node, ns ...*node) []*node {
	var out []*node
	for _, n := range ns {
		if n != l {
			out = append(out, n)
		}
	}
	return out
}

// TestElectorOneLeader: three electors on one database: exactly one leads,
// every node shows it and the node list; stopping the leader hands over at
// once; killing the leader's connections costs no overlap.
func TestElectorOneLeader(t *testing.T) {
	_, dsn := database(t)
	rec := &recorder{}
	a := startNode(t, dsn, "a", fast, rec)
	b := startNode(t, dsn, "b", fast, rec)
	c := startNode(t, dsn, "c", fast, rec)
	all := []*node{a, b, c}
	s := sample(all...)

	l := waitOneLeader(t, testenv.WaitTimeout, all...)
	testenv.Wait(t, "the node list shows three nodes, the leader marked", func() bool {
		ns, err := a.e.Nodes()
		if err != nil || len(ns) != 3 {
			return false
		}
		for _, n := range ns {
			if n.Leader != (n.Node == l.name) || n.Addr != "127.0.0.1:80" || n.Age > fast.TTL {
				return false
			}
		}
		return true
	})
	if v := nextChange(t, l); !v {
		t.Errorf("OnChange: leader got %v first, want true", v)
	}

	// Stopping the leader resigns its lease: the next leads within Renew or so.
	t0 := time.Now()
	l.stop()
	rest := others(l, all...)
	l2 := waitOneLeader(t, takeoverBound, rest...)
	t.Logf("takeover after the leader stopped: %v", time.Since(t0))
	if d := time.Since(t0); d > 4*fast.Renew {
		t.Errorf("takeover after a resignation took %v, want about Renew (%v)", d, fast.Renew)
	}
	if v := nextChange(t, l); v {
		t.Error("OnChange: stopped leader did not report false")
	}
	if l.e.IsLeader() {
		t.Error("stopped elector still says it leads")
	}

	// Cutting the leader's connections: it reconnects and renews (or another
	// node takes over); never two at once.
	tCut := time.Now()
	terminate(t, dsn, "campaignd/"+l2.name+"/elector")
	testenv.Wait(t, "the leader's elector reconnected after the cut", func() bool {
		l2.e.mu.Lock()
		defer l2.e.mu.Unlock()
		return l2.e.viewAt.After(tCut)
	})
	l3 := waitOneLeader(t, takeoverBound, rest...)
	t.Logf("after cutting %s's connections, %s leads (%d terms so far)", l2.name, l3.name, rec.count())
	s.finish(t)
	for _, n := range rest {
		n.stop()
	}
	rec.check(t)
}

// TestElectorPartition: with production timings, the leader loses the
// database (a black-holed network, nothing closed). It must stop leading
// within TTL − Renew of its last renewal, and another node must lead within
// 15 s; when the network heals, it follows.
func TestElectorPartition(t *testing.T) {
	p, dsn := database(t)
	target := fmt.Sprintf("127.0.0.1:%d", p.Port)
	rec := &recorder{}
	var ns []*node
	proxies := map[*node]*proxy{}
	for _, name := range []string{"a", "b", "c"} {
		px := newProxy(t, target)
		n := startNode(t, px.dsn(t, dsn), name, Options{}, rec)
		ns = append(ns, n)
		proxies[n] = px
	}
	s := sample(ns...)
	l := waitOneLeader(t, 30*time.Second, ns...)
	opts := l.e.o

	t0 := time.Now()
	proxies[l].partition(true)
	testenv.Eventually(t, takeoverBound, "the cut-off leader steps down", func() bool { return !l.e.IsLeader() })
	stepDown := time.Since(t0)
	l2 := waitOneLeader(t, takeoverBound, others(l, ns...)...)
	takeover := time.Since(t0)
	t.Logf("partition: old leader stepped down after %v (bound %v), new leader %s after %v (bound %v)",
		stepDown, opts.TTL-opts.Renew, l2.name, takeover, takeoverBound)
	if stepDown > opts.TTL-opts.Renew+time.Second {
		t.Errorf("step-down took %v, want ≤ TTL − Renew = %v", stepDown, opts.TTL-opts.Renew)
	}
	if takeover > takeoverBound {
		t.Errorf("takeover took %v, want ≤ %v", takeover, takeoverBound)
	}
	var cut *term
	rec.mu.Lock()
	for _, tm := range rec.terms {
		if tm.node == l.name {
			cut = tm
		}
	}
	rec.mu.Unlock()
	testenv.Wait(t, "the cut-off leader's lead function returns", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return !cut.end.IsZero()
	})
	rec.mu.Lock()
	if !errors.Is(cut.cause, ErrLost) {
		t.Errorf("lead context cause %v, want ErrLost", cut.cause)
	}
	rec.mu.Unlock()
	testenv.Eventually(t, 2*opts.TTL, "the cut-off node reports the leader unknown", func() bool {
		_, err := l.e.Leader()
		return errors.Is(err, ErrUnknown)
	})

	proxies[l].partition(false)
	testenv.Eventually(t, 30*time.Second, "the healed node sees the new leader", func() bool {
		v, err := l.e.Leader()
		return err == nil && v.Node == l2.name && !v.Self
	})
	if l.e.IsLeader() {
		t.Error("the healed node leads again")
	}
	s.finish(t)
	for _, n := range ns {
		n.stop()
	}
	rec.check(t)
}

// TestElectorDatabaseRestart: the database crashes under the nodes: the
// leader steps down within TTL − Renew, nobody leads while it is down, and
// a leader is back soon after it restarts.
func TestElectorDatabaseRestart(t *testing.T) {
	p, dsn := database(t)
	rec := &recorder{}
	a := startNode(t, dsn, "a", fast, rec)
	b := startNode(t, dsn, "b", fast, rec)
	s := sample(a, b)
	l := waitOneLeader(t, testenv.WaitTimeout, a, b)
	v, _ := l.e.Leader()
	epochBefore := v.Epoch

	t0 := time.Now()
	p.Stop()
	testenv.Eventually(t, takeoverBound, "nobody leads while the database is down", func() bool {
		return len(leaders(a, b)) == 0
	})
	stepDown := time.Since(t0)
	t.Logf("database down: leader stepped down after %v (bound %v)", stepDown, fast.TTL-fast.Renew)
	if stepDown > fast.TTL-fast.Renew+time.Second {
		t.Errorf("step-down took %v, want ≤ %v", stepDown, fast.TTL-fast.Renew)
	}
	// Stay down until both nodes know they cannot see the database (TTL
	// without a read), then check that nobody claimed the lead meanwhile.
	testenv.Eventually(t, takeoverBound, "both nodes report the leader unknown", func() bool {
		_, ea := a.e.Leader()
		_, eb := b.e.Leader()
		return errors.Is(ea, ErrUnknown) && errors.Is(eb, ErrUnknown)
	})
	if len(leaders(a, b)) != 0 {
		t.Error("a node leads while the database is down")
	}

	tUp := time.Now()
	p.Start()
	t1 := time.Now()
	l = waitOneLeader(t, takeoverBound, a, b)
	t.Logf("database back: %s leads %v after it accepts connections again", l.name, time.Since(t1))
	rec.mu.Lock()
	for _, tm := range rec.terms {
		if tm.start.After(t0) && tm.start.Before(tUp) {
			t.Errorf("%s began a term while the database was down", tm.node)
		}
		if tm.start.Before(t0) && (tm.end.IsZero() || tm.end.Sub(t0) > fast.TTL-fast.Renew+time.Second) {
			t.Errorf("%s led on after the database went down (term ended %v)", tm.node, tm.end)
		}
	}
	rec.mu.Unlock()
	if v, _ := l.e.Leader(); v.Epoch <= epochBefore {
		t.Errorf("epoch after restart %d, before %d", v.Epoch, epochBefore)
	}
	s.finish(t)
	a.stop()
	b.stop()
	rec.check(t)
}

func TestNewElectorOptions(t *testing.T) {
	if _, err := NewElector("postgres://x@127.0.0.1/db", Options{}); err == nil {
		t.Error("no error without a node name")
	}
	if _, err := NewElector("postgres://x@127.0.0.1/db", Options{Node: "a", Renew: time.Second, TTL: 2 * time.Second}); err == nil {
		t.Error("no error with TTL < 3 × Renew")
	}
	e, err := NewElector("postgres://x@127.0.0.1/db", Options{Node: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if e.o.Renew != 2*time.Second || e.o.TTL != 10*time.Second || e.stepDown != 8*time.Second {
		t.Errorf("defaults: renew %v ttl %v step-down %v", e.o.Renew, e.o.TTL, e.stepDown)
	}
	if _, err := e.Leader(); !errors.Is(err, ErrUnknown) {
		t.Errorf("Leader before Run: %v, want ErrUnknown", err)
	}
}

// nextChange returns the next value n's OnChange reported.
func nextChange(t *testing.T, n *node) bool {
	t.Helper()
	select {
	case v := <-n.changes:
		return v
	case <-time.After(testenv.WaitTimeout):
		t.Fatalf("%s: no OnChange call", n)
		return false
	}
}
