package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"campaignd/internal/testenv"
)

// fast are election timings short enough for tests that do not measure the
// production bounds: step-down after 2 s without a renewal, takeover of a
// dead leader within about 3 s.
var fast = Options{Renew: 500 * time.Millisecond, TTL: 2500 * time.Millisecond}

// term is one leadership term as its lead function saw it.
type term struct {
	node       string
	epoch      int64
	start, end time.Time // end is when lead returned; zero while it runs
	cause      error
}

// recorder records every term of every elector of a test and checks that
// they never overlap and that their epochs increase.
type recorder struct {
	mu    sync.Mutex
	terms []*term
}

func (r *recorder) lead(node string) LeadFunc {
	return func(ctx context.Context, epoch int64) {
		tm := &term{node: node, epoch: epoch, start: time.Now()}
		r.mu.Lock()
		r.terms = append(r.terms, tm)
		r.mu.Unlock()
		<-ctx.Done()
		r.mu.Lock()
		tm.end, tm.cause = time.Now(), context.Cause(ctx)
		r.mu.Unlock()
	}
}

// check fails the test if two terms overlapped in time or if epochs did not
// strictly increase from one term to the next.
func (r *recorder) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	ts := append([]*term(nil), r.terms...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].start.Before(ts[j].start) })
	for i := 1; i < len(ts); i++ {
		a, b := ts[i-1], ts[i]
		if a.end.IsZero() || a.end.After(b.start) {
			t.Errorf("terms overlap: %s epoch %d (%v–%v) and %s epoch %d from %v",
				a.node, a.epoch, a.start.Format(time.StampMicro), a.end.Format(time.StampMicro),
				b.node, b.epoch, b.start.Format(time.StampMicro))
		}
		if b.epoch <= a.epoch {
			t.Errorf("epoch did not increase: %s %d then %s %d", a.node, a.epoch, b.node, b.epoch)
		}
	}
	if len(ts) == 0 {
		t.Error("no term at all")
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.terms)
}

// node is one running Elector.
type node struct {
	name    string
	e       *Elector
	cancel  context.CancelFunc
	done    chan struct{}
	changes chan bool
}

func startNode(t *testing.T, dsn, name string, o Options, rec *recorder) *node {
	t.Helper()
	n := &node{name: name, done: make(chan struct{}), changes: make(chan bool, 100)}
	o.Node, o.Addr = name, "127.0.0.1:80"
	o.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	o.OnChange = func(v bool) { n.changes <- v }
	e, err := NewElector(dsn, o)
	if err != nil {
		t.Fatal(err)
	}
	n.e = e
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() { defer close(n.done); _ = e.Run(ctx, rec.lead(name)) }()
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	n.cancel()
	<-n.done
}

// leaders returns the nodes that say they lead.
func leaders(ns ...*node) []*node {
	var out []*node
	for _, n := range ns {
		if n.e.IsLeader() {
			out = append(out, n)
		}
	}
	return out
}

// sampler polls IsLeader on every node until stopped, counting the samples
// where more than one node said it leads.
type sampler struct {
	stop    chan struct{}
	done    chan struct{}
	samples int
	overlap int
}

func sample(ns ...*node) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tk := time.NewTicker(2 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tk.C:
			}
			s.samples++
			if len(leaders(ns...)) > 1 {
				s.overlap++
			}
		}
	}()
	return s
}

func (s *sampler) finish(t *testing.T) {
	t.Helper()
	close(s.stop)
	<-s.done
	t.Logf("IsLeader sampled %d times, %d with two leaders", s.samples, s.overlap)
	if s.overlap > 0 {
		t.Errorf("%d samples with more than one leader", s.overlap)
	}
}

// database starts a PostgreSQL server and returns it with a fresh database.
func database(t *testing.T) (*testenv.Postgres, string) {
	t.Helper()
	p := testenv.StartPostgres(t)
	return p, p.NewDatabase(t)
}

// withConn runs fn on a connection of its own to dsn, failing the test on
// an error.
func withConn(t *testing.T, dsn string, fn func(ctx context.Context, c *pgx.Conn) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := fn(ctx, c); err != nil {
		t.Fatal(err)
	}
}

// execSQL runs sql on dsn once.
func execSQL(t *testing.T, dsn, sql string, args ...any) {
	t.Helper()
	withConn(t, dsn, func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, sql, args...)
		return err
	})
}

// terminate ends every server session of node's elector, as if its
// connections had been cut.
func terminate(t *testing.T, dsn, app string) {
	t.Helper()
	execSQL(t, dsn, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, app)
}

// proxy relays TCP to PostgreSQL and can cut the relay the way a network
// partition does: bytes vanish, nothing is closed, new connections hang.
type proxy struct {
	ln       net.Listener
	target   string
	mu       sync.Mutex
	cut      bool
	conns    []net.Conn
	accepted int
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// dsn returns the DSN of database dsn's through the proxy.
func (p *proxy) dsn(t *testing.T, dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		p.accepted++
		cut := p.cut
		p.mu.Unlock()
		if cut {
			go func() { _, _ = io.Copy(io.Discard, c) }() // the handshake never answers
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, s)
		p.mu.Unlock()
		go p.relay(c, s)
		go p.relay(s, c)
	}
}

func (p *proxy) relay(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			dst.Close()
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			src.Close()
			return
		}
	}
}

// partition cuts (true) or heals (false) the relay. Healing closes the
// connections that lived through the cut, as TCP would have given up on
// them.
func (p *proxy) partition(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if !cut {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

func (p *proxy) close() {
	p.ln.Close()
	p.partition(false)
}

func (n *node) String() string { return fmt.Sprintf("node %s", n.name) }

// connections returns how many connections the proxy has accepted.
func (p *proxy) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// queryBool runs a query returning one boolean on dsn.
func queryBool(t *testing.T, dsn, sql string, args ...any) bool {
	t.Helper()
	var v bool
	withConn(t, dsn, func(ctx context.Context, c *pgx.Conn) error {
		return c.QueryRow(ctx, sql, args...).Scan(&v)
	})
	return v
}
