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

// Rescan is the payload that tells a receiver it may have missed
// notifications and must re-read the state it cares about. See Listen.
const Rescan = ""

// NotifierOptions configure a Notifier.
type NotifierOptions struct {
	// Node names this node in pg_stat_activity's application_name.
	Node string
	// Logger receives reconnects (system=cluster is added).
	Logger *slog.Logger
	// Check is how long the listening connection may stay silent before it
	// is pinged, so a dead link is noticed within 2 × Check. Default 5 s.
	Check time.Duration
	// Retry is the pause between reconnect attempts. Default 1 s.
	Retry time.Duration
}

// maxPending is how many payloads a slow receiver may have queued before
// they are replaced by one Rescan.
const maxPending = 1024

// Notifier sends and receives PostgreSQL notifications between nodes. Run
// holds the listening connection; Listen subscribes; Notify sends.
type Notifier struct {
	o       NotifierOptions
	listenC *pgx.ConnConfig
	sendC   *pgx.ConnConfig
	log     *slog.Logger

	mu        sync.Mutex
	subs      map[string]map[*subscriber]struct{}
	dirty     bool               // subs changed since the listening loop last looked
	interrupt context.CancelFunc // wakes the listening loop from its wait
	gen       int                // counts listening connections

	sendMu   sync.Mutex
	sendConn *pgx.Conn

	maxPending int
	running    atomic.Bool
	pings      atomic.Int64 // successful health checks, for tests
}

// NewNotifier returns a notifier for the database at dsn. It connects when
// Run (to listen) or Notify is first called.
func NewNotifier(dsn string, o NotifierOptions) (*Notifier, error) {
	if o.Check <= 0 {
		o.Check = 5 * time.Second
	}
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	lc, err := connConfig(dsn, "campaignd/"+o.Node+"/listen")
	if err != nil {
		return nil, err
	}
	sc, err := connConfig(dsn, "campaignd/"+o.Node+"/notify")
	if err != nil {
		return nil, err
	}
	return &Notifier{
		o: o, listenC: lc, sendC: sc,
		log:        o.Logger.With("system", "cluster", keyNode, o.Node),
		subs:       make(map[string]map[*subscriber]struct{}),
		maxPending: maxPending,
	}, nil
}

// Notify sends payload on channel to every node listening on it (this one
// included). It retries once on a fresh connection, so a notification is not
// lost to a connection that broke while idle. To notify only if a change
// commits, use the package function Notify inside the change's transaction.
func (n *Notifier) Notify(ctx context.Context, channel, payload string) error {
	n.sendMu.Lock()
	defer n.sendMu.Unlock()
	var err error
	for try := 0; try < 2 && ctx.Err() == nil; try++ {
		if n.sendConn == nil || n.sendConn.IsClosed() {
			closeConn(n.sendConn)
			n.sendConn, err = pgx.ConnectConfig(ctx, n.sendC)
			if err != nil {
				n.sendConn = nil
				continue
			}
		}
		if err = Notify(ctx, n.sendConn, channel, payload); err == nil {
			return nil
		}
		closeConn(n.sendConn)
		n.sendConn = nil
	}
	if err == nil {
		err = ctx.Err()
	}
	return fmt.Errorf("cluster: notify %s: %w", channel, err)
}

// Notify sends payload on channel through db; in a transaction, it is sent
// when the transaction commits and not at all if it rolls back.
func Notify(ctx context.Context, db Execer, channel, payload string) error {
	_, err := db.Exec(ctx, "SELECT pg_notify($1, $2)", channel, payload)
	return err
}

// Close closes the sending connection. Run's listening connection closes
// when Run's context is done.
func (n *Notifier) Close() {
	n.sendMu.Lock()
	defer n.sendMu.Unlock()
	closeConn(n.sendConn)
	n.sendConn = nil
}

// Listen returns the payloads sent on channel until ctx is done, when the
// returned channel is closed. Run must be running (or start later) for
// anything to arrive.
//
// The contract: the empty payload (Rescan) means "notifications may have
// been missed: re-read the state". The first value is always Rescan, sent
// once the LISTEN is in effect (anything committed before it may have been
// missed); Rescan comes again after every reconnect and when the receiver
// fell behind by more than 1024 payloads. Other payloads arrive in the order
// PostgreSQL delivered them, never blocking the other receivers.
func (n *Notifier) Listen(ctx context.Context, channel string) <-chan string {
	s := &subscriber{channel: channel, out: make(chan string), wake: make(chan struct{}, 1), max: n.maxPending}
	n.mu.Lock()
	if n.subs[channel] == nil {
		n.subs[channel] = make(map[*subscriber]struct{})
	}
	n.subs[channel][s] = struct{}{}
	n.changed()
	n.mu.Unlock()
	go func() {
		s.pump(ctx)
		n.mu.Lock()
		delete(n.subs[channel], s)
		if len(n.subs[channel]) == 0 {
			delete(n.subs, channel)
		}
		n.changed()
		n.mu.Unlock()
	}()
	return s.out
}

// changed tells the listening loop to re-read the subscriptions. n.mu held.
func (n *Notifier) changed() {
	n.dirty = true
	if n.interrupt != nil {
		n.interrupt()
	}
}

// Run holds the listening connection until ctx is done: it LISTENs on every
// channel someone subscribed to, delivers what arrives, and reconnects (and
// re-LISTENs, and sends Rescan) whenever the connection fails. It returns
// ctx's error.
func (n *Notifier) Run(ctx context.Context) error {
	if !n.running.CompareAndSwap(false, true) {
		return errors.New("cluster: Notifier.Run called twice")
	}
	defer n.running.Store(false)
	for failures := 0; ; failures++ {
		began := time.Now()
		err := n.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(began) > n.o.Check {
			failures = 0 // the session worked for a while: a new outage
		}
		if failures == 0 {
			n.log.Warn("listening connection lost; reconnecting", slog.Any(keyError, err))
		} else {
			n.log.Debug("reconnect failed", slog.Any(keyError, err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(n.o.Retry):
		}
	}
}

// session runs one listening connection until it fails or ctx is done.
func (n *Notifier) session(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, n.o.Check)
	c, err := pgx.ConnectConfig(cctx, n.listenC)
	cancel()
	if err != nil {
		return err
	}
	defer closeConn(c)
	n.mu.Lock()
	n.gen++
	gen := n.gen
	n.mu.Unlock()
	listening := make(map[string]bool)
	for {
		if err := n.sync(ctx, c, gen, listening); err != nil {
			return err
		}
		wctx, wcancel := context.WithTimeout(ctx, n.o.Check)
		n.mu.Lock()
		if n.dirty {
			n.mu.Unlock()
			wcancel()
			continue
		}
		n.interrupt = wcancel
		n.mu.Unlock()

		msg, err := c.WaitForNotification(wctx)
		waitErr := wctx.Err() // before wcancel below sets it
		n.mu.Lock()
		n.interrupt = nil
		n.mu.Unlock()
		wcancel()
		switch {
		case err == nil:
			n.deliver(gen, msg.Channel, msg.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case c.IsClosed():
			return err
		case errors.Is(waitErr, context.DeadlineExceeded):
			pctx, pcancel := context.WithTimeout(ctx, n.o.Check)
			err = c.Ping(pctx)
			pcancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
			n.pings.Add(1)
		case waitErr != nil: // interrupted: subscriptions changed
		default:
			return err
		}
	}
}

// sync LISTENs on new channels and UNLISTENs on abandoned ones, then sends
// Rescan to every subscriber that is not yet told its LISTEN is in effect on
// this connection.
func (n *Notifier) sync(ctx context.Context, c *pgx.Conn, gen int, listening map[string]bool) error {
	n.mu.Lock()
	n.dirty = false
	want := make(map[string]bool, len(n.subs))
	for ch := range n.subs {
		want[ch] = true
	}
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, n.o.Check)
	defer cancel()
	for ch := range want {
		if listening[ch] {
			continue
		}
		if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("listen %s: %w", ch, err)
		}
		listening[ch] = true
	}
	for ch := range listening {
		if want[ch] {
			continue
		}
		if _, err := c.Exec(ctx, "UNLISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("unlisten %s: %w", ch, err)
		}
		delete(listening, ch)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range listening {
		for s := range n.subs[ch] {
			if s.gen != gen {
				s.gen = gen
				s.push(Rescan)
			}
		}
	}
	return nil
}

// deliver hands payload to every subscriber of channel that has had its
// Rescan for this connection (a newer one gets its Rescan first, at the next
// sync, which covers this payload).
func (n *Notifier) deliver(gen int, channel, payload string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for s := range n.subs[channel] {
		if s.gen == gen {
			s.push(payload)
		}
	}
}

// subscriber queues one receiver's payloads so a slow receiver never blocks
// the listening loop or the others.
type subscriber struct {
	channel string
	out     chan string
	wake    chan struct{}
	max     int
	gen     int // the listening connection its Rescan was sent for; n.mu

	mu    sync.Mutex
	queue []string
}

func (s *subscriber) push(p string) {
	s.mu.Lock()
	if len(s.queue) >= s.max {
		s.queue = append(s.queue[:0], Rescan)
	} else {
		s.queue = append(s.queue, p)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// pump moves queued payloads to out until ctx is done, then closes out.
func (s *subscriber) pump(ctx context.Context) {
	defer close(s.out)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		for {
			s.mu.Lock()
			if len(s.queue) == 0 {
				s.mu.Unlock()
				break
			}
			p := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			select {
			case s.out <- p:
			case <-ctx.Done():
				return
			}
		}
	}
}
