package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Log keys.
const (
	keyNode  = "node"
	keyEpoch = "epoch"
	keyError = "error"
)

// ErrLost is the cause of a lead context cancelled because this node could
// not confirm its lease in time or found it taken.
var ErrLost = errors.New("cluster: leadership lost")

// ErrUnknown is returned by Leader and Nodes when this node has not read the
// leader row recently (it cannot reach the database).
var ErrUnknown = errors.New("cluster: leader unknown (database unreachable)")

// Options configure an Elector.
type Options struct {
	// Node names this node; unique in the cluster. Required.
	Node string
	// Addr is where the node's console/API is reached, shown to operators.
	Addr string
	// Renew is how often the leader renews its lease and a follower tries to
	// take it. Default 2 s.
	Renew time.Duration
	// TTL is how long a renewal keeps the lease. Default 5 × Renew. It must
	// be at least 3 × Renew: the leader steps down TTL − Renew after its last
	// confirmed renewal, so it gets at least one retry. A dead leader is
	// replaced within about TTL + Renew.
	TTL time.Duration
	// Logger receives the elector's events (system=cluster is added).
	Logger *slog.Logger
	// OnChange, if set, is called when this node starts or stops leading
	// (for a campaignd_leader gauge). Calls are serialised, never repeat a
	// value, and must return quickly.
	OnChange func(leader bool)
}

// LeadFunc runs while this node leads. ctx is cancelled when leadership is
// lost (cause ErrLost) or Run's context is done; the function must then stop
// acting as leader and return within Renew, the margin that keeps two nodes
// from acting at once. epoch is the term's fencing token: it increases with
// every term across the cluster and is stored in cluster_leader.epoch.
type LeadFunc func(ctx context.Context, epoch int64)

// Leader is the leader row as this node last read it.
type Leader struct {
	Node    string // "" when nobody holds a valid lease
	Addr    string
	Epoch   int64
	Since   time.Time // start of the term
	Expires time.Time // by the database's clock
	Self    bool      // this Elector leads
}

// Node is one row of cluster_node: a node and its heartbeat.
type Node struct {
	Node     string
	Addr     string
	Started  time.Time     // when the running instance first beat
	LastSeen time.Time     // by the database's clock
	Age      time.Duration // since LastSeen, by the database's clock
	Leader   bool          // holds the valid lease
}

// Elector elects one leader among the nodes sharing a database. Create it
// with NewElector and call Run once.
type Elector struct {
	o        Options
	cfg      *pgx.ConnConfig
	instance string
	log      *slog.Logger
	stepDown time.Duration

	running  atomic.Bool
	conn     *pgx.Conn // owned by Run's goroutine
	migrated bool
	down     bool // the last round failed: log the next failures quietly

	leader   atomic.Bool
	changeMu sync.Mutex
	reported bool
	terms    uint64 // numbers the terms, so a late watchdog of an old one is ignored

	mu     sync.Mutex
	view   Leader
	nodes  []Node
	viewAt time.Time // when view was read; zero before the first read
}

// NewElector returns an elector for the database at dsn; it connects when
// Run is called.
func NewElector(dsn string, o Options) (*Elector, error) {
	if o.Node == "" {
		return nil, errors.New("cluster: Options.Node is required")
	}
	if o.Renew <= 0 {
		o.Renew = 2 * time.Second
	}
	if o.TTL <= 0 {
		o.TTL = 5 * o.Renew
	}
	if o.TTL < 3*o.Renew {
		return nil, fmt.Errorf("cluster: TTL %s must be at least 3 × Renew %s", o.TTL, o.Renew)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := connConfig(dsn, "campaignd/"+o.Node+"/elector")
	if err != nil {
		return nil, err
	}
	return &Elector{
		o:        o,
		cfg:      cfg,
		instance: newInstance(),
		log:      o.Logger.With("system", "cluster", keyNode, o.Node),
		stepDown: o.TTL - o.Renew,
	}, nil
}

// IsLeader reports whether this node leads now.
func (e *Elector) IsLeader() bool { return e.leader.Load() }

// Leader returns the leader as this node last read it (at most Renew ago).
// The error is ErrUnknown when that read is older than TTL.
func (e *Elector) Leader() (Leader, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.view
	l.Self = l.Self && e.leader.Load()
	if e.viewAt.IsZero() || time.Since(e.viewAt) > e.o.TTL {
		return l, ErrUnknown
	}
	return l, nil
}

// Nodes returns the cluster's nodes and their heartbeats, as last read (at
// most Renew ago); the error is ErrUnknown when that read is older than TTL.
func (e *Elector) Nodes() ([]Node, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ns := append([]Node(nil), e.nodes...)
	if e.viewAt.IsZero() || time.Since(e.viewAt) > e.o.TTL {
		return ns, ErrUnknown
	}
	return ns, nil
}

// Run takes part in the election until ctx is done, calling lead for every
// term this node wins (never two at once). When ctx is done it stops the
// current term, waits for lead to return, resigns the lease so another node
// takes over at once, and returns ctx's error.
func (e *Elector) Run(ctx context.Context, lead LeadFunc) error {
	if !e.running.CompareAndSwap(false, true) {
		return errors.New("cluster: Elector.Run called twice")
	}
	defer func() { closeConn(e.conn); e.conn = nil }()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		sent := time.Now()
		epoch, won := e.attempt(ctx)
		if !won {
			e.heartbeat(ctx)
			t.Reset(e.o.Renew)
			continue
		}
		next := time.Duration(0)
		if returned := e.term(ctx, epoch, sent, lead); returned {
			// lead gave up on its own: give another node a turn first.
			next = 2 * e.o.Renew
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t.Reset(next)
	}
}

// term runs one term that began with a renewal sent at confirmed. It returns
// when the lease is lost, ctx is done or lead returned (then returned is
// true), always after lead has returned.
func (e *Elector) term(ctx context.Context, epoch int64, confirmed time.Time, lead LeadFunc) (returned bool) {
	leadCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	id := e.begin()
	lose := func() { e.end(id); cancel(ErrLost) }
	// The watchdog fires at the step-down deadline whatever the renewals
	// are doing (a query to a partitioned database can hang).
	deadline := confirmed.Add(e.stepDown)
	watchdog := time.AfterFunc(time.Until(deadline), lose)
	defer watchdog.Stop()

	e.log.Info("leading", keyEpoch, epoch)
	done := make(chan struct{})
	go func() { defer close(done); lead(leadCtx, epoch) }()
	e.heartbeat(leadCtx)

	tick := time.NewTicker(e.o.Renew)
	defer tick.Stop()
loop:
	for {
		select {
		case <-leadCtx.Done():
			break loop
		case <-done:
			returned = true
			break loop
		case <-tick.C:
		}
		sent := time.Now()
		rctx, rcancel := context.WithDeadline(leadCtx, deadline)
		ok, err := e.renew(rctx, epoch)
		rcancel()
		switch {
		case err != nil && leadCtx.Err() != nil: // the watchdog cut it short
			break loop
		case err != nil:
			e.failed("lease renewal failed", err)
		case !ok:
			watchdog.Stop()
			lose()
			break loop
		case watchdog.Stop(): // it had not fired: extend the term
			deadline = sent.Add(e.stepDown)
			watchdog.Reset(time.Until(deadline))
		default: // the renewal came back after the deadline: too late
			break loop
		}
		e.heartbeat(leadCtx)
	}
	watchdog.Stop()
	lose()
	<-done
	switch {
	case returned:
		e.resign(epoch)
		e.log.Info("lead function returned; resigned", keyEpoch, epoch)
	case ctx.Err() != nil:
		e.resign(epoch)
		e.log.Info("stopped; resigned", keyEpoch, epoch)
	default:
		e.log.Warn("leadership lost", keyEpoch, epoch)
	}
	return returned
}

// begin marks this node leader for a new term and returns its number.
func (e *Elector) begin() uint64 {
	e.changeMu.Lock()
	defer e.changeMu.Unlock()
	e.terms++
	e.report(true)
	return e.terms
}

// end marks this node no longer leader, unless term id is already over.
func (e *Elector) end(id uint64) {
	e.changeMu.Lock()
	defer e.changeMu.Unlock()
	if id == e.terms {
		e.report(false)
	}
}

// report sets IsLeader and calls OnChange on a change. e.changeMu held.
func (e *Elector) report(v bool) {
	e.leader.Store(v)
	if v == e.reported {
		return
	}
	e.reported = v
	if e.o.OnChange != nil {
		e.o.OnChange(v)
	}
}

// connect returns the elector's connection, (re)opening it if needed.
func (e *Elector) connect(ctx context.Context) (*pgx.Conn, error) {
	if e.conn != nil && !e.conn.IsClosed() {
		return e.conn, nil
	}
	closeConn(e.conn)
	e.conn = nil
	c, err := pgx.ConnectConfig(ctx, e.cfg)
	if err != nil {
		return nil, err
	}
	if !e.migrated {
		if err := Migrate(ctx, c); err != nil {
			closeConn(c)
			return nil, err
		}
		e.migrated = true
	}
	e.conn = c
	return c, nil
}

// failed logs a failed round: a warning for the first of an outage.
func (e *Elector) failed(msg string, err error) {
	if e.down {
		e.log.Debug(msg, slog.Any(keyError, err))
		return
	}
	e.down = true
	e.log.Warn(msg, slog.Any(keyError, err))
}

// fail drops the connection after an error, so the next round reconnects.
func (e *Elector) fail() {
	closeConn(e.conn)
	e.conn = nil
}

// leaderCols reads the leader row; valid says whether the lease is current.
const leaderCols = `node, instance, addr, epoch, since, expires_at, expires_at > now()`

// attemptSQL takes the lease when it has expired (or is this instance's own,
// after a step-down that the database never saw) and returns the row as it
// now stands, taken or not.
const attemptSQL = `
WITH won AS (
	UPDATE cluster_leader
	SET node = $1, instance = $2, addr = $3, epoch = epoch + 1, since = now(),
	    expires_at = now() + $4 * interval '1 millisecond'
	WHERE id = 1 AND (expires_at < now() OR instance = $2)
	RETURNING ` + leaderCols + `
)
SELECT true, * FROM won
UNION ALL
SELECT false, ` + leaderCols + ` FROM cluster_leader WHERE id = 1 AND NOT EXISTS (SELECT 1 FROM won)`

// attempt tries to take the lease and records what it saw.
func (e *Elector) attempt(ctx context.Context) (epoch int64, won bool) {
	ctx, cancel := context.WithTimeout(ctx, e.o.Renew)
	defer cancel()
	c, err := e.connect(ctx)
	if err != nil {
		e.failed("cannot reach the database", err)
		return 0, false
	}
	var l Leader
	var instance string
	var valid bool
	err = c.QueryRow(ctx, attemptSQL, e.o.Node, e.instance, e.o.Addr, e.o.TTL.Milliseconds()).
		Scan(&won, &l.Node, &instance, &l.Addr, &l.Epoch, &l.Since, &l.Expires, &valid)
	if err != nil {
		e.fail()
		e.failed("lease attempt failed", err)
		return 0, false
	}
	e.record(l, instance, valid)
	return l.Epoch, won
}

const renewSQL = `
UPDATE cluster_leader SET expires_at = now() + $3 * interval '1 millisecond'
WHERE id = 1 AND instance = $1 AND epoch = $2 AND expires_at > now()
RETURNING ` + leaderCols

// renew extends this term's lease. ok is false when the lease is no longer
// this term's (taken, or expired); err when the database did not answer.
func (e *Elector) renew(ctx context.Context, epoch int64) (ok bool, err error) {
	c, err := e.connect(ctx)
	if err != nil {
		return false, err
	}
	var l Leader
	var instance string
	var valid bool
	err = c.QueryRow(ctx, renewSQL, e.instance, epoch, e.o.TTL.Milliseconds()).
		Scan(&l.Node, &instance, &l.Addr, &l.Epoch, &l.Since, &l.Expires, &valid)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		e.fail()
		return false, err
	}
	e.record(l, instance, valid)
	return true, nil
}

// resign expires this term's lease so another node need not wait for it.
func (e *Elector) resign(epoch int64) {
	ctx, cancel := context.WithTimeout(context.Background(), e.o.Renew)
	defer cancel()
	c, err := e.connect(ctx)
	if err == nil {
		_, err = c.Exec(ctx, `UPDATE cluster_leader SET expires_at = now() - interval '1 millisecond'
			WHERE id = 1 AND instance = $1 AND epoch = $2`, e.instance, epoch)
	}
	if err != nil {
		e.log.Warn("cannot resign; the lease will expire", keyEpoch, epoch, slog.Any(keyError, err))
		e.fail()
	}
}

func (e *Elector) record(l Leader, instance string, valid bool) {
	if !valid {
		l = Leader{Epoch: l.Epoch}
	}
	l.Self = valid && instance == e.instance
	if e.down {
		e.down = false
		e.log.Info("database reachable again")
	}
	e.mu.Lock()
	e.view, e.viewAt = l, time.Now()
	e.mu.Unlock()
}

const heartbeatSQL = `
INSERT INTO cluster_node AS n (node, instance, addr, started, last_seen)
VALUES ($1, $2, $3, now(), now())
ON CONFLICT (node) DO UPDATE SET instance = excluded.instance, addr = excluded.addr, last_seen = now(),
	started = CASE WHEN n.instance = excluded.instance THEN n.started ELSE excluded.started END`

const nodesSQL = `
SELECT n.node, n.addr, n.started, n.last_seen, extract(epoch FROM now() - n.last_seen)::float8,
	n.instance = l.instance AND l.expires_at > now()
FROM cluster_node n CROSS JOIN cluster_leader l WHERE l.id = 1 ORDER BY n.node`

// heartbeat records that this node is alive and reads the node list. A
// failure is logged only: it costs the console a stale list, never the lease.
func (e *Elector) heartbeat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, e.o.Renew)
	defer cancel()
	c, err := e.connect(ctx)
	if err != nil {
		return
	}
	if _, err := c.Exec(ctx, heartbeatSQL, e.o.Node, e.instance, e.o.Addr); err != nil {
		e.log.Debug("heartbeat failed", slog.Any(keyError, err))
		e.fail()
		return
	}
	rows, _ := c.Query(ctx, nodesSQL)
	ns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Node, error) {
		var n Node
		var age float64
		err := r.Scan(&n.Node, &n.Addr, &n.Started, &n.LastSeen, &age, &n.Leader)
		n.Age = time.Duration(age * float64(time.Second))
		return n, err
	})
	if err != nil {
		e.log.Debug("node list failed", slog.Any(keyError, err))
		e.fail()
		return
	}
	e.mu.Lock()
	e.nodes = ns
	e.mu.Unlock()
}
