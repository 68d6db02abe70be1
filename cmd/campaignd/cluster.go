package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/afero"

	"campaignd"
	"campaignd/cluster"
	"campaignd/pgfs"
	"campaignd/pipeline/engine"
	"campaignd/pipeline/report"
	"campaignd/pipeline/wheel"
	"campaignd/smpp"
	"campaignd/store"
)

// Running as several nodes on one PostgreSQL database (SPEC §12). Every
// node serves FTP (the users' files are in the database too, see filesDB),
// the console, the API and metrics; only the leader (cluster.Elector) runs
// the ingest jobs, whichever node took the upload, holds the SMPP binds and
// runs the engine, the timing wheel, the reporter and the replies. An operator's
// action on another node is relayed to the leader through the database
// (store's action queue, woken by NOTIFY, found by a periodic scan when a
// notification is lost). With Badger there is no cluster: the one node
// leads, and nothing here runs.

// StoreConfig is [store].
type StoreConfig struct {
	// Engine is "badger" (embedded, one node; the default) or "postgres"
	// (the whole state in PostgreSQL, any number of nodes).
	Engine string `toml:"engine"`
	// DSN is the PostgreSQL connection string (postgres only).
	DSN string `toml:"dsn"`
	// Node names this node in the cluster; default: the host name and the
	// console's port ("web-1:8080").
	Node string `toml:"node"`
}

func (c *StoreConfig) validate() error {
	switch c.Engine {
	case "badger":
	case "postgres":
		if c.DSN == "" {
			return errors.New(`config: store.dsn: store.engine = "postgres" needs a dsn like "postgres://campaignd:PASSWORD@db:5432/campaignd"`)
		}
		// The DSN may hold a password: never echo it.
		if _, err := pgx.ParseConfig(c.DSN); err != nil {
			return errors.New("config: store.dsn: not a PostgreSQL connection string (postgres://user:password@host:port/database or key=value pairs)")
		}
	default:
		return fmt.Errorf("config: store.engine: must be badger or postgres, not %q", c.Engine)
	}
	if len(c.Node) > 64 || strings.ContainsAny(c.Node, " \t\r\n") {
		return fmt.Errorf("config: store.node: must be a name of at most 64 characters without spaces, not %q", c.Node)
	}
	return nil
}

// clustered reports whether the configuration runs as a node of a cluster.
func (c *Config) clustered() bool { return c.Store.Engine == "postgres" }

// nodeName is store.node, or the host name and the console's port.
func (c *Config) nodeName() string {
	if c.Store.Node != "" {
		return c.Store.Node
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "campaignd"
	}
	if _, port, err := net.SplitHostPort(c.Web.Listen); err == nil {
		return host + ":" + port
	}
	return host
}

// openStore opens the configured engine.
func (m *Main) openStore() (Store, error) {
	c := &m.Config
	o := store.Options{Dir: filepath.Join(c.DataDir, "store"), Logger: m.Logger.With("system", "store"), Now: m.Now}
	if !c.clustered() {
		return store.Open(o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := store.OpenPG(ctx, c.Store.DSN, store.PGOptions{Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("store (postgres): %w", err)
	}
	db, err := store.OpenKV(kv, o)
	if err != nil {
		kv.Close()
		return nil, err
	}
	return db, nil
}

// openLeading starts what only the leader runs. Alone (Badger) that is
// sending itself, at once, as it always was; in a cluster it prepares the
// election, which startCluster runs once every listener is open.
func (m *Main) openLeading() error {
	if !m.Config.clustered() {
		m.Metrics.Leader(true)
		return m.openSending()
	}
	c, err := newClusterNode(m)
	if err != nil {
		return err
	}
	m.cluster = c
	return nil
}

// Channels between the nodes.
const (
	chanActions = "campaignd_actions" // a request was queued: payload its id
	chanResults = "campaignd_results" // a request was answered: payload its id
	chanIngest  = "campaignd_ingest"  // an upload was recorded
)

// Kinds of relayed requests.
const (
	kindAct   = "act"   // campaignd.ActionRequest → *campaignd.Broadcast
	kindAdmit = "admit" // broadcast id; nobody waits
	kindPush  = "push"  // pushRequest → *campaignd.Report
)

const (
	// defaultRelayTimeout bounds how long an operator waits for the leader.
	defaultRelayTimeout = 10 * time.Second
	// relayGrace is how much longer a waiter waits once the leader has
	// taken its request (it runs, so its result is worth waiting for).
	relayGrace = 5 * time.Second
	// actionScan is how often the leader looks for queued requests whose
	// notification was lost, and a waiter for its result.
	actionScan = time.Second
	relayPoll  = 250 * time.Millisecond
	// stopBudget bounds how long a node that stopped leading takes to stop
	// sending: under the elector's 2 s margin.
	stopBudget = 1500 * time.Millisecond
	// ingestScan is how often the leader looks for ingest jobs whose
	// notification (chanIngest) was lost.
	ingestScan = 5 * time.Second
)

// errNoAnswer is what an operator sees when the leader did not take the
// request in time (it was withdrawn: nothing happened).
var errNoAnswer = campaignd.Errorf(campaignd.EINTERNAL, "The sending node did not answer; nothing was done. Try again in a few seconds.")

// errLateAnswer: the leader took the request but did not answer in time.
var errLateAnswer = campaignd.Errorf(campaignd.EINTERNAL, "The sending node took the request but did not answer in time; check the broadcast before trying again.")

type pushRequest struct {
	Day, User, RemoteAddr string
}

// clusterNode is this node's part in the cluster.
type clusterNode struct {
	m        *Main
	name     string
	elector  *cluster.Elector
	notifier *cluster.Notifier
	log      *slog.Logger
	timeout  time.Duration // relay timeout
	grace    time.Duration // relayGrace

	// mu guards m's sending components (Engine, SMPP, Sender, Wheel,
	// Reporter, Replies, Sim) while a term starts or ends; readers take a
	// snapshot (Main.sending) and never hold it while they work.
	mu sync.RWMutex

	waitMu  sync.Mutex
	waiters map[string]chan struct{}

	readOnce sync.Once
	reader   *report.Reporter // reads reports on a follower

	// ingesting is closed when the last term's ingest worker has returned;
	// only lead (called by one goroutine, the elector's) touches it.
	ingesting chan struct{}
}

func newClusterNode(m *Main) (*clusterNode, error) {
	name, dsn := m.Config.nodeName(), m.Config.Store.DSN
	c := &clusterNode{m: m, name: name, timeout: defaultRelayTimeout, grace: relayGrace, waiters: map[string]chan struct{}{},
		log: m.Logger.With("system", "cluster", "node", name)}
	var err error
	addr := m.Config.Web.BaseURL
	if addr == "" {
		addr = m.Config.Web.Listen
	}
	c.elector, err = cluster.NewElector(dsn, cluster.Options{
		Node: name, Addr: addr, Logger: m.Logger, OnChange: m.Metrics.Leader,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c.notifier, err = cluster.NewNotifier(dsn, cluster.NotifierOptions{Node: name, Logger: m.Logger})
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	m.Metrics.Leader(false)
	return c, nil
}

// startCluster runs the notifier, the result and ingest wake-ups, and the
// election, until Main's context ends (Close waits for them).
func (m *Main) startCluster() {
	c := m.cluster
	if c == nil {
		return
	}
	results := c.notifier.Listen(m.ctx, chanResults)
	uploads := c.notifier.Listen(m.ctx, chanIngest)
	m.wg.Add(4)
	go func() {
		defer m.wg.Done()
		c.notifier.Run(m.ctx)
		c.notifier.Close()
	}()
	go func() {
		defer m.wg.Done()
		for id := range results {
			c.wake(id)
		}
	}()
	go func() {
		defer m.wg.Done()
		for range uploads {
			m.kickIngest()
		}
	}()
	go func() {
		defer m.wg.Done()
		c.elector.Run(m.ctx, c.lead)
	}()
	c.log.Info("cluster node started; electing the sending node")
}

func (m *Main) kickIngest() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// lead is one term: open sending with the term's context, run the queued
// requests as they come, and stop sending within stopBudget of the term's
// end (the SMPP binds first, so no submit_sm leaves after).
func (c *clusterNode) lead(term context.Context, epoch int64) {
	log := c.log.With("epoch", epoch)
	// The term also ends when this node's store stops answering: sending
	// on while its results cannot be recorded would only make duplicates.
	lead, giveUp := context.WithCancelCause(term)
	defer giveUp(nil)
	go c.watchStore(lead, giveUp)
	wake := c.notifier.Listen(lead, chanActions)
	c.mu.Lock()
	err := c.m.openSendingCtx(lead)
	if err != nil {
		c.m.stopSending(log)
		c.mu.Unlock()
		log.Error("cannot start sending on this node; giving the lead up", slog.Any("error", err))
		return
	}
	c.mu.Unlock()
	log.Info("this node leads: it sends and ingests")
	// The ingest worker runs for the term: woken by this node's uploads
	// and, through chanIngest, by the other nodes'. It starts only once the
	// previous term's worker has returned (one that outlived its term by
	// the bound below), so one node never runs a job twice at once.
	ingesting, previous := make(chan struct{}), c.ingesting
	c.ingesting = ingesting
	go func() {
		defer close(ingesting)
		if previous != nil {
			select {
			case <-previous:
			case <-lead.Done():
				return
			}
		}
		c.m.ingestLoop(lead)
	}()

	// Queued requests are run beside, so that a store call hanging on a
	// lost database never delays the end of the term.
	go func() {
		tick := time.NewTicker(actionScan)
		defer tick.Stop()
		for {
			c.runActions(lead)
			select {
			case <-lead.Done():
				return
			case <-wake:
			case <-tick.C:
			}
		}
	}()
	<-lead.Done()
	// Sending stops first, whatever ingest is doing: a second sender is the
	// one thing a term's end must rule out. An ingest job cut short is
	// finished by the next leader (ingest is crash-safe); a broadcast it
	// commits now is found by the next leader's engine.
	c.mu.Lock()
	c.m.stopSending(log)
	c.mu.Unlock()
	select {
	case <-ingesting:
	case <-time.After(5 * time.Second):
		log.Warn("the ingest worker is still running after the term ended; it stops at its next store call")
	}
	log.Info("this node no longer leads: sending stopped", slog.Any("cause", context.Cause(lead)))
}

// errStoreLost ends a term whose node cannot reach its store.
var errStoreLost = errors.New("cluster: the store does not answer")

// Store health while leading: pinged every storeCheck; storeFailures
// failures in a row (an error, or no answer within storeCheckTimeout) end
// the term.
const (
	storeCheck        = 250 * time.Millisecond
	storeCheckTimeout = 2 * time.Second
	storeFailures     = 2
)

// watchStore ends the term (giveUp) when the store stops answering, long
// before the lease runs out: the binds close, so at most what was in flight
// goes out unrecorded.
func (c *clusterNode) watchStore(ctx context.Context, giveUp context.CancelCauseFunc) {
	t := time.NewTicker(storeCheck)
	defer t.Stop()
	failed := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		answer := make(chan error, 1)
		go func() { answer <- c.m.DB.Ping() }()
		var err error
		select {
		case err = <-answer:
		case <-time.After(storeCheckTimeout):
			err = errors.New("no answer")
		case <-ctx.Done():
			return
		}
		if err == nil {
			failed = 0
			continue
		}
		if failed++; failed >= storeFailures {
			c.log.Error("the store does not answer: stopping sending", slog.Any("error", err))
			giveUp(errStoreLost)
			return
		}
	}
}

// stopSending closes the term's sending components within stopBudget: the
// binds first (no submit_sm after), then the wheel, the engine and the
// replies. c.mu is held.
func (m *Main) stopSending(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), stopBudget)
	defer cancel()
	var errs []error
	if m.SMPP != nil {
		errs = append(errs, m.SMPP.Close(ctx))
	}
	if m.Wheel != nil {
		m.Wheel.Close()
	}
	if m.Engine != nil {
		errs = append(errs, m.Engine.Close(ctx))
	}
	m.closeReplies()
	if m.Sim != nil {
		errs = append(errs, m.Sim.Close())
	}
	if err := errors.Join(errs...); err != nil {
		log.Warn("stopping sending", slog.Any("error", err))
	}
	m.SMPP, m.Sender, m.Wheel, m.Engine, m.Reporter, m.Replies, m.Sim = nil, nil, nil, nil, nil, nil, nil
}

// sendingParts is a snapshot of the sending components: all nil on a node
// that does not lead.
type sendingParts struct {
	engine   *engine.Engine
	reporter *report.Reporter
	client   *smpp.Client
	sender   engine.Sender
}

func (m *Main) sending() sendingParts {
	if c := m.cluster; c != nil {
		c.mu.RLock()
		defer c.mu.RUnlock()
	}
	return sendingParts{engine: m.Engine, reporter: m.Reporter, client: m.SMPP, sender: m.Sender}
}

// runActions takes and runs the queued requests, oldest first.
func (c *clusterNode) runActions(ctx context.Context) {
	ids, err := c.m.DB.PendingActions(100)
	if err != nil {
		c.log.Warn("listing relayed requests failed", slog.Any("error", err))
		return
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		a, err := c.m.DB.TakeAction(id)
		if err != nil {
			c.log.Warn("taking a relayed request failed", "request", id, slog.Any("error", err))
			continue
		}
		if a == nil {
			continue // cancelled or taken by another term
		}
		res := c.run(ctx, a)
		if a.Kind == kindAdmit {
			continue
		}
		res.ID, res.Node = a.ID, c.name
		if err := c.m.DB.FinishAction(res); err != nil {
			c.log.Error("recording a relayed request's result failed", "request", id, slog.Any("error", err))
			continue
		}
		if err := c.notifier.Notify(ctx, chanResults, a.ID); err != nil {
			c.log.Warn("notifying a result failed; the waiter polls", slog.Any("error", err))
		}
	}
}

// run runs one taken request here, as the leader.
func (c *clusterNode) run(ctx context.Context, a *store.Action) store.ActionResult {
	p := c.m.sending()
	var out any
	var err error
	switch {
	case p.engine == nil:
		err = campaignd.Errorf(campaignd.EINTERNAL, "The sending node is changing over; try again in a few seconds.")
	case a.Kind == kindAct:
		var req campaignd.ActionRequest
		if err = json.Unmarshal(a.Payload, &req); err == nil {
			out, err = p.engine.Act(ctx, req)
		}
	case a.Kind == kindAdmit:
		var id uint64
		var b *campaignd.Broadcast
		if err = json.Unmarshal(a.Payload, &id); err == nil {
			if b, err = c.m.DB.Broadcast(id); err == nil {
				err = p.engine.Admit(b)
			}
		}
	case a.Kind == kindPush:
		var req pushRequest
		if err = json.Unmarshal(a.Payload, &req); err == nil {
			out, err = p.reporter.PushReport(ctx, req.Day, req.User, req.RemoteAddr)
		}
	default:
		err = fmt.Errorf("unknown request kind %q", a.Kind)
	}
	var res store.ActionResult
	if err != nil {
		if campaignd.ErrorCode(err) == campaignd.EINTERNAL || campaignd.ErrorCode(err) == "" {
			c.log.Error("relayed request failed", "kind", a.Kind, "from", a.Node, slog.Any("error", err))
		}
		res.Code, res.Message = campaignd.ErrorCode(err), campaignd.ErrorMessage(err)
		if res.Code == "" {
			res.Code = campaignd.EINTERNAL
		}
		return res
	}
	if out != nil {
		res.Payload, _ = json.Marshal(out)
	}
	return res
}

// relay queues a request for the leader, wakes it and waits (bounded) for
// the result, decoded into out. A request the leader did not take in time
// is withdrawn, so it never runs after its operator was told it failed.
func (c *clusterNode) relay(ctx context.Context, kind string, payload, out any) error {
	p, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	woken := make(chan struct{}, 1)
	id, err := c.m.DB.QueueAction(store.Action{Kind: kind, Payload: p, Node: c.name})
	if err != nil {
		return err
	}
	c.waitMu.Lock()
	c.waiters[id] = woken
	c.waitMu.Unlock()
	defer func() {
		c.waitMu.Lock()
		delete(c.waiters, id)
		c.waitMu.Unlock()
	}()
	if err := c.notifier.Notify(ctx, chanActions, id); err != nil {
		c.log.Warn("waking the sending node failed; it finds the request on its next scan", slog.Any("error", err))
	}
	poll := time.NewTicker(relayPoll)
	defer poll.Stop()
	deadline := time.NewTimer(c.timeout)
	defer deadline.Stop()
	taken := false
	for {
		r, err := c.m.DB.ActionResult(id)
		if err != nil {
			c.log.Warn("reading a relayed result failed", slog.Any("error", err))
		} else if r != nil {
			if r.Code != "" {
				return campaignd.Errorf(r.Code, "%s", r.Message)
			}
			if out != nil && len(r.Payload) > 0 {
				return json.Unmarshal(r.Payload, out)
			}
			return nil
		}
		var stop error
		select {
		case <-woken:
		case <-poll.C:
		case <-ctx.Done():
			stop = ctx.Err()
		case <-deadline.C:
			stop = errNoAnswer
		}
		if stop == nil {
			continue
		}
		if taken {
			return errLateAnswer
		}
		was, err := c.m.DB.CancelAction(id)
		if err != nil || was {
			return stop // withdrawn (or the database is gone: it expires)
		}
		// The leader took it: it runs; wait a little for its result.
		taken = true
		deadline.Reset(c.grace)
		if ctx.Err() != nil {
			return errLateAnswer
		}
	}
}

// wake tells a waiter that its result may be there.
func (c *clusterNode) wake(id string) {
	c.waitMu.Lock()
	ch := c.waiters[id]
	c.waitMu.Unlock()
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	if id == cluster.Rescan {
		c.waitMu.Lock()
		for _, ch := range c.waiters {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		c.waitMu.Unlock()
	}
}

// act runs an operator's action: here when this node leads, else on the
// leader.
func (c *clusterNode) act(ctx context.Context, r campaignd.ActionRequest) (*campaignd.Broadcast, error) {
	if p := c.m.sending(); p.engine != nil {
		return p.engine.Act(ctx, r)
	}
	var b campaignd.Broadcast
	if err := c.relay(ctx, kindAct, r, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// admit hands an ingested broadcast to the engine: here when this node
// leads, else queued for the leader without waiting (a lost one is repaired
// by the next leader's start-up reconciliation).
func (c *clusterNode) admit(b *campaignd.Broadcast) {
	if p := c.m.sending(); p.engine != nil {
		if err := p.engine.Admit(b); err != nil {
			c.log.Error("admitting broadcast failed", "broadcast_id", b.ID, slog.Any("error", err))
		}
		return
	}
	v, _ := json.Marshal(b.ID)
	id, err := c.m.DB.QueueAction(store.Action{Kind: kindAdmit, Payload: v, Node: c.name})
	if err == nil {
		err = c.notifier.Notify(c.m.ctx, chanActions, id)
	}
	if err != nil {
		c.log.Warn("handing a broadcast to the sending node failed; it is picked up when a node next starts leading",
			"broadcast_id", b.ID, slog.Any("error", err))
	}
}

// pushReport pushes a report from the leader (which holds the archive and
// the push state).
func (c *clusterNode) pushReport(ctx context.Context, day, user, remoteAddr string) (*campaignd.Report, error) {
	if p := c.m.sending(); p.reporter != nil {
		return p.reporter.PushReport(ctx, day, user, remoteAddr)
	}
	var rep campaignd.Report
	if err := c.relay(ctx, kindPush, pushRequest{Day: day, User: user, RemoteAddr: remoteAddr}, &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}

// reports returns the leader's reporter, or on a follower one that only
// reads (no timers, no pushes).
func (c *clusterNode) reports() (*report.Reporter, error) {
	if p := c.m.sending(); p.reporter != nil {
		return p.reporter, nil
	}
	var err error
	c.readOnce.Do(func() {
		m, rc := c.m, &c.m.Config.Report
		c.reader, err = report.NewReporter(report.Options{
			Store: m.DB, Timers: wheel.NewWheel(m.DB, wheel.Options{Now: m.Now, Logger: m.Logger}),
			Dir: filepath.Join(m.Config.DataDir, "reports"), FileName: rc.FileName, Location: m.loc,
			Time: rc.Time, Now: m.Now, Logger: m.Logger,
		})
	})
	if c.reader == nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return c.reader, nil
}

// leaderName is the leading node's name, "" when unknown.
func (c *clusterNode) leaderName() string {
	l, err := c.elector.Leader()
	if err != nil {
		return ""
	}
	return l.Node
}

// clusterNames is the console header's view of the cluster (nil alone).
func (m *Main) clusterNames() func() (node, leader string) {
	c := m.cluster
	if c == nil {
		return nil
	}
	return func() (string, string) { return c.name, c.leaderName() }
}

// ready adds the node's role to /readyz.
func (c *clusterNode) ready(detail map[string]string) {
	detail["node"] = c.name
	detail["role"] = "follower"
	if c.elector.IsLeader() {
		detail["role"] = "leader"
	}
	detail["leader"] = c.leaderName()
	if detail["leader"] == "" {
		detail["leader"] = "unknown"
	}
}

// filesPoolConns caps the connections of the pool that serves the FTP
// jails (pgfs), apart from the store's. A transfer holds one only while a
// chunk (256 KiB) commits, plus one committing behind it, so 16 carry some
// eight uploads or downloads committing at the same instant and many more
// streaming; more wait for a free connection (bounded by pgfs's timeout).
const filesPoolConns = 16

// filesDB is the FTP users' files in PostgreSQL (pgfs): every node serves
// the same jails, so any node takes an upload and the leader ingests it.
type filesDB struct {
	pool *pgxpool.Pool
	db   *pgfs.DB
}

// openFiles opens the jails' store when clustered; nil alone (the jails
// are on disk).
func (m *Main) openFiles() (*filesDB, error) {
	if !m.Config.clustered() {
		return nil, nil
	}
	cfg, err := pgxpool.ParseConfig(m.Config.Store.DSN)
	if err != nil {
		return nil, errors.New("store.dsn: not a PostgreSQL connection string")
	}
	cfg.MaxConns = filesPoolConns
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ftp files (postgres): %w", err)
	}
	db, err := pgfs.Open(ctx, pool, pgfs.Options{})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("ftp files (postgres): %w", err)
	}
	return &filesDB{pool: pool, db: db}, nil
}

// jail is ftpd's and the Inbox's Jail: user's files under /<user>; nil
// alone, which keeps them on disk.
func (f *filesDB) jail() func(user string) (afero.Fs, error) {
	if f == nil {
		return nil
	}
	return func(user string) (afero.Fs, error) {
		if user == "" || user == "." || user == ".." || strings.ContainsAny(user, "/\\\x00") {
			return nil, fmt.Errorf("ftp user %q: %w", user, fs.ErrNotExist)
		}
		return f.db.Fs("/" + user), nil
	}
}

func (f *filesDB) close() {
	if f != nil {
		f.pool.Close()
	}
}

// uploaded wakes the leader's ingest worker, wherever it runs.
func (m *Main) uploaded(ctx context.Context) {
	if c := m.cluster; c != nil {
		if err := c.notifier.Notify(ctx, chanIngest, ""); err != nil {
			c.log.Warn("notifying an upload failed", slog.Any("error", err))
		}
	}
}
