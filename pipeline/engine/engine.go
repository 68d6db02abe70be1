package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"campaignd"
	"campaignd/pipeline/wheel"
)

// Sender submits one message over SMPP (*smpp.Client). Submit blocks for a
// window slot, rate tokens and a bound session, and returns one SMSC message
// id per part. Its errors are *campaignd.SubmitError,
// campaignd.ErrSubmitTimeout and campaignd.ErrNotBound; a failure at part k
// returns the ids of the parts before it with the error.
type Sender interface {
	Submit(ctx context.Context, m campaignd.OutMessage) (ids []string, err error)
	Bound() bool
}

// Store is what the engine needs from the store (implemented by *store.DB).
// Its timers it keeps through the Wheel, not here.
type Store interface {
	Broadcast(id uint64) (*campaignd.Broadcast, error)
	Broadcasts(f campaignd.BroadcastFilter) ([]*campaignd.Broadcast, int, error)
	UpdateBroadcast(id uint64, fn func(*campaignd.Broadcast) error) (*campaignd.Broadcast, error)
	DeleteBroadcast(id uint64) error
	Messages(bid uint64, from uint32, fn func(*campaignd.Message) error) error
	Message(bid uint64, idx uint32) (*campaignd.Message, error)
	SaveChanges(cs []campaignd.Change, rs []campaignd.ReceiptIn, o campaignd.SaveOptions) (*campaignd.ChangeResult, error)
	ExpireEarlyReceipts(before time.Time) (int, time.Time, error)
	SubmittedBefore(bid uint64, before time.Time, fn func(idx uint32) error) (time.Time, error)
	Audit(e campaignd.AuditEntry) error
	Sync() error
}

// Events receives the engine's countable events (metrics). Nil: none. The
// SMPP client reports SubmitDone itself.
type Events interface {
	wheel.Events
	// MessageSettled: a message reached a final status (or "cancelled").
	MessageSettled(status string)
	// ReceiptReceived: "matched", "early", "duplicate" or "unmatched".
	ReceiptReceived(outcome string)
	// DuplicatesAfterCrash: messages that may have been submitted twice
	// because they were in flight when the process died (see Engine).
	DuplicatesAfterCrash(n int)
}

type nopEvents struct{}

func (nopEvents) TimersPending(int)                {}
func (nopEvents) TimerFired(string, time.Duration) {}

func (nopEvents) MessageSettled(string)    {}
func (nopEvents) ReceiptReceived(string)   {}
func (nopEvents) DuplicatesAfterCrash(int) {}

// Options configure an Engine. Zero values get the defaults given.
type Options struct {
	Store  Store  // required
	Sender Sender // required
	// Wheel holds the engine's timers; NewEngine registers its handlers, so
	// create the engine before the wheel starts. Required.
	Wheel *wheel.Wheel
	// Window is smpp.window: at most this many submits are in progress.
	// Default 10.
	Window int
	// TPS is smpp.tps (0 = no cap). The engine does not rate-limit (the
	// Sender does) but uses fewer submitters when TPS is low, so that none
	// waits more than half a second for a rate token and a pause stops
	// every submit within a second.
	TPS int
	// MaxAttempts bounds submits of a message refused with a temporary
	// error; the last refusal settles it REJECTD. Default 5.
	MaxAttempts int
	// RetryBackoff is the wait after the first temporary refusal, doubling
	// per attempt up to 5 min. Default 5 s.
	RetryBackoff time.Duration
	// ResponseTimeout is smpp.response_timeout: how long Close lets
	// submits in flight finish. Default 10 s.
	ResponseTimeout time.Duration
	// ReceiptTimeout is report.receipt_timeout: a message without a
	// receipt this long after its submit settles UNKNOWN. Default 72 h.
	ReceiptTimeout time.Duration
	// EarlyHold is how long a receipt whose id is not (yet) known is kept
	// before it is counted unmatched and dropped. Default 10 min.
	EarlyHold time.Duration
	// SendWindow is sending.window ("08:00-21:00"); "" = always.
	SendWindow string
	// Location is the configured time zone: of the send window and of the
	// settle day a message is indexed under for the daily report.
	// Default time.Local.
	Location *time.Location
	// Now and After are the clock (default time.Now, time.After).
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// MessageIDFormat is smpp.message_id_format: the forms a receipt's id
	// is looked up in (campaignd.IDFormats). Default "auto".
	MessageIDFormat string
	// BatchSize caps the changes written in one transaction. Default 256.
	BatchSize int
	Logger    *slog.Logger
	Events    Events
}

// Timer kinds of the engine.
const (
	TimerBroadcast = "broadcast" // id bid: a scheduled broadcast starts
	TimerRetry     = "retry"     // id bid/index: a message refused with a temporary error is due again
	TimerWindow    = "window"    // id "open": the send window opens
	TimerReceipt   = "receipt"   // id bid: sweep the broadcast's messages without a receipt in time
	TimerEarly     = "early"     // id "sweep": drop early receipts never matched
)

// Reasons shown in Broadcast.Wait.
const (
	WaitUnbound = "SMSC not bound; sending resumes when the bind is up"
	// WaitStore: the store refused the record of a submit; nothing more is
	// sent until it takes it.
	WaitStore  = "the store is not answering; sending resumes when it records what was sent"
	waitWindow = "outside the send window %s; sending resumes at %s"
)

// Engine sends broadcasts (SPEC §5): it hands queued messages to a pool of
// submitters, round-robin between the broadcasts that are sending, and
// records every outcome in the store through one writer goroutine that
// batches state changes into transactions.
//
// What to send next is derived from per-message state, never guessed from
// a cursor: a message is queued until the store says otherwise, and a
// message handed to a submitter is "claimed" in memory until its outcome is
// durable. Each sending broadcast has a run that reads its queued messages
// in index order a page at a time.
//
// Durability: a state change is committed before anything depends on it (a
// receipt is acknowledged, a message unclaimed); the store's write-ahead log
// survives a process crash. The writer also syncs to disk at most once a
// second, which bounds what a power failure can take.
//
// Choices where the specification is silent:
//   - An unknown outcome (no response, lost bind) does not count as an
//     attempt; the message is submitted again until it has an answer.
//   - A multipart message refused at part k>0 is retried or rejected as a
//     whole; the receipts of the parts already accepted then match nothing
//     and are counted unmatched.
//   - A message settles when its last part's receipt arrives; SettledAt is
//     the arrival time (the engine's clock), not the receipt's done date, so
//     a message lands in the report of the day it was learnt. A receipt for
//     a message already final (e.g. UNKNOWN after the timeout) is counted a
//     duplicate and changes nothing.
//   - Retry backoff: RetryBackoff doubling per attempt, at most 5 min.
//
// Crash and duplicates: a claim is not written to the store (that would
// double the writes), so messages in flight when the process dies are still
// queued after the restart and are submitted again: at most Window of them
// per crash, since a worker takes its next message only once the outcome of
// its last is written (an SMSC answer not yet written counts as in flight:
// with PostgreSQL under load, a write-behind let hundreds pile up). When a restarted run finds queued messages below the highest
// message already recorded — the submits that were in flight — it reports
// their number (capped at Window) to Events.DuplicatesAfterCrash: an upper
// bound of the duplicates that crash caused.
type Engine struct {
	db      Store
	sender  Sender
	wheel   *wheel.Wheel
	log     *slog.Logger
	events  Events
	now     func() time.Time
	after   func(time.Duration) <-chan time.Time
	loc     *time.Location
	window  SendWindow
	workers int

	maxAttempts     int
	retryBackoff    time.Duration
	responseTimeout time.Duration
	receiptTimeout  time.Duration
	earlyHold       time.Duration
	batchSize       int
	sweepEvery      time.Duration // granularity of receipt-timeout sweeps

	actMu sync.Mutex // serialises operator actions and timer-driven transitions

	mu           sync.Mutex
	runs         map[uint64]*run
	order        []*run // round-robin order
	rr           int
	wake         chan struct{}
	wait         string // why nothing is sent, "" when sending freely
	windowArmed  bool
	started      bool
	completing   map[uint64]completion
	writes       chan *writeReq
	rcpt         *receiptQueue // receipts for the writer, from the SMPP readers
	writerCtx    context.Context
	writerDone   chan struct{}
	closed       chan struct{}
	stopped      chan struct{} // closed when Close has finished
	takeCancel   context.CancelFunc
	submitCancel context.CancelFunc
	stopWriter   context.CancelFunc
	workersWG    sync.WaitGroup
	fx           *effects       // the side effects decided under mu (effects.go)
	acksWG       sync.WaitGroup // receipt acknowledgements after a batch is on disk
	unrecorded   []outcome      // submit outcomes the store refused, written again (recordLater)
	recording    bool           // a write of unrecorded is in flight
}

// outcome is the known result of one submit, to be recorded.
type outcome struct {
	r *run
	m *campaignd.Message
	c campaignd.Change
}

// run is the in-memory state of a broadcast that is sending (or paused, or
// cancelled with submits still in flight).
type run struct {
	bid     uint64
	sender  string
	status  campaignd.Status
	pos     uint32 // the next index the reader looks at
	buf     []*campaignd.Message
	requeue []*campaignd.Message // retries and unknown outcomes, sent first
	claimed map[uint32]struct{}  // in buf, requeue, a submitter or the writer
	skip    map[uint32]struct{}  // taken out of order by a retry timer before the reader got there
	// retryAfter: retry timers that fired while the message was claimed
	retryAfter map[uint32]struct{}
	loading    bool
	exhausted  bool
	gaps       int // queued messages seen below a recorded one, on the first pass
	gapRun     int
	ticks      [rateBuckets]rateBucket

	// validity is the validity period of each submit_sm (the
	// broadcast's); 0: the client's default.
	validity time.Duration
}

const (
	pageSize    = 512
	lowWater    = 256
	rateBuckets = 16 // seconds of submit history for Progress
)

type rateBucket struct {
	sec int64
	n   int
}

// NewEngine returns an engine and registers its timer handlers with the
// wheel. Start it, then start the wheel.
func NewEngine(o Options) (*Engine, error) {
	if o.Store == nil || o.Sender == nil || o.Wheel == nil {
		return nil, errors.New("pipeline: engine needs Store, Sender and Wheel")
	}
	if o.Window <= 0 {
		o.Window = 10
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 5 * time.Second
	}
	if o.ResponseTimeout <= 0 {
		o.ResponseTimeout = 10 * time.Second
	}
	if o.ReceiptTimeout <= 0 {
		o.ReceiptTimeout = 72 * time.Hour
	}
	if o.EarlyHold <= 0 {
		o.EarlyHold = 10 * time.Minute
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 256
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Events == nil {
		o.Events = nopEvents{}
	}
	rcpt, err := newReceiptQueue(o.MessageIDFormat)
	if err != nil {
		return nil, err
	}
	win, err := ParseSendWindow(o.SendWindow, o.Location)
	if err != nil {
		return nil, err
	}
	workers := o.Window
	if o.TPS > 0 {
		workers = max(1, min(workers, o.TPS/2))
	}
	e := &Engine{
		db: o.Store, sender: o.Sender, wheel: o.Wheel, log: o.Logger, events: o.Events,
		now: o.Now, after: o.After, loc: o.Location, window: win, workers: workers,
		maxAttempts: o.MaxAttempts, retryBackoff: o.RetryBackoff, responseTimeout: o.ResponseTimeout,
		receiptTimeout: o.ReceiptTimeout, earlyHold: o.EarlyHold, batchSize: o.BatchSize,
		sweepEvery: max(time.Second, o.ReceiptTimeout/100),
		runs:       map[uint64]*run{}, wake: make(chan struct{}), completing: map[uint64]completion{},
		writes: make(chan *writeReq, 4*workers), rcpt: rcpt, fx: newEffects(),
	}
	e.wheel.Handle(TimerBroadcast, e.onBroadcastTimer)
	e.wheel.Handle(TimerRetry, e.onRetryTimer)
	e.wheel.Handle(TimerWindow, e.onWindowTimer)
	e.wheel.Handle(TimerReceipt, e.onReceiptTimer)
	e.wheel.Handle(TimerEarly, e.onEarlyTimer)
	return e, nil
}

// dayOf is the local day a settle time is indexed under.
func (e *Engine) dayOf(t time.Time) string { return t.In(e.loc).Format("20060102") }

// Start recovers from the store — broadcasts that were sending go on,
// scheduled ones get their timer, an interrupted cancel finishes — and
// starts the submitters and the writer. ctx bounds the engine's life; Close
// stops it gracefully.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errors.New("pipeline: engine already started")
	}
	e.started = true
	var takeCtx, submitCtx context.Context
	e.writerCtx, e.stopWriter = context.WithCancel(context.WithoutCancel(ctx))
	e.writerDone = make(chan struct{})
	takeCtx, e.takeCancel = context.WithCancel(ctx)
	e.closed = make(chan struct{})
	e.stopped = make(chan struct{})
	submitCtx, e.submitCancel = context.WithCancel(context.WithoutCancel(ctx))
	e.mu.Unlock()

	go e.writer()
	e.fx.start(effectWorkers)
	if err := e.recover(); err != nil {
		e.Close(context.Background())
		return err
	}
	for range e.workers {
		e.workersWG.Add(1)
		go e.submitter(takeCtx, submitCtx)
	}
	go func() {
		select {
		case <-ctx.Done():
			e.Close(context.Background())
		case <-e.closed:
		}
	}()
	return nil
}

// recover reconciles the store with the timers after a (re)start.
func (e *Engine) recover() error {
	all, _, err := e.db.Broadcasts(campaignd.BroadcastFilter{})
	if err != nil {
		return err
	}
	for _, b := range all {
		switch b.Status {
		case campaignd.StatusSending:
			e.startRun(b, true)
		case campaignd.StatusScheduled:
			if err := e.ensureTimer(TimerBroadcast, idOf(b.ID), b.ScheduledAt); err != nil {
				return err
			}
		case campaignd.StatusCancelled:
			if b.Counts.Queued > 0 {
				e.startCancel(b.ID)
			}
		}
		if b.Counts.Submitted > 0 {
			if err := e.ensureTimer(TimerReceipt, idOf(b.ID), e.now().Add(e.receiptTimeout)); err != nil {
				return err
			}
		}
	}
	return e.ensureTimer(TimerEarly, "sweep", e.now().Add(e.earlyHold))
}

// ensureTimer schedules kind/id at due unless it is already pending.
func (e *Engine) ensureTimer(kind, id string, due time.Time) error {
	if _, ok, err := e.wheel.Due(kind, id); err != nil || ok {
		return err
	}
	return e.wheel.Schedule(kind, id, due)
}

// Close stops handing out messages, lets submits in flight finish (up to
// ResponseTimeout, or ctx), records their outcomes and stops the writer. It
// does not close the wheel or the store.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if !e.started {
		e.mu.Unlock()
		return nil
	}
	if e.takeCancel == nil {
		// Closing already (the context's end and a caller can race): wait for it, so that
		// nothing writes once Close has returned.
		stopped := e.stopped
		e.mu.Unlock()
		select {
		case <-stopped:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}
	takeCancel, submitCancel, stopWriter := e.takeCancel, e.submitCancel, e.stopWriter
	e.takeCancel = nil
	close(e.closed)
	e.mu.Unlock()
	defer close(e.stopped)

	takeCancel()
	done := make(chan struct{})
	go func() {
		e.workersWG.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-e.after(e.responseTimeout + time.Second):
	case <-ctx.Done():
	}
	submitCancel() // submits still waiting for a bind or a token: not sent, they stay queued
	<-done
	e.fx.stop()
	stopWriter()
	<-e.writerDone
	e.acksWG.Wait()
	return nil
}

func idOf(bid uint64) string { return strconv.FormatUint(bid, 10) }

func retryID(bid uint64, idx uint32) string { return fmt.Sprintf("%d/%d", bid, idx) }

func parseRetryID(id string) (uint64, uint32, bool) {
	a, b, ok := strings.Cut(id, "/")
	if !ok {
		return 0, 0, false
	}
	bid, err1 := strconv.ParseUint(a, 10, 64)
	idx, err2 := strconv.ParseUint(b, 10, 32)
	return bid, uint32(idx), err1 == nil && err2 == nil
}

// kick wakes every submitter waiting for work.
func (e *Engine) kickLocked() {
	close(e.wake)
	e.wake = make(chan struct{})
}

func (e *Engine) kick() {
	e.mu.Lock()
	e.kickLocked()
	e.mu.Unlock()
}

// SMSCBound tells the engine the SMPP bind went up or down (wire it to the
// client's OnBound); sending also polls Sender.Bound.
func (e *Engine) SMSCBound(bool) { e.kick() }

// startRun makes broadcast b's run, sending. fromStore marks a run created
// from the store's state rather than by an action in this process.
func (e *Engine) startRun(b *campaignd.Broadcast, fromStore bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.runs[b.ID]; r != nil {
		if r.status != campaignd.StatusCancelled {
			r.status = campaignd.StatusSending
		}
		e.kickLocked()
		return
	}
	r := &run{bid: b.ID, sender: b.Sender, validity: b.Validity, status: campaignd.StatusSending,
		claimed: map[uint32]struct{}{}, skip: map[uint32]struct{}{}, retryAfter: map[uint32]struct{}{}}
	e.runs[b.ID] = r
	e.order = append(e.order, r)
	e.kickLocked()
	e.background(func() {
		if err := e.ensureTimer(TimerReceipt, idOf(b.ID), e.now().Add(e.receiptTimeout)); err != nil {
			e.log.Error("schedule receipt sweep", slog.Uint64(logBID, b.ID), slog.Any(logError, err))
		}
	})
}

// dropRunLocked forgets a run.
func (e *Engine) dropRunLocked(r *run) {
	delete(e.runs, r.bid)
	for i, o := range e.order {
		if o == r {
			e.order = append(e.order[:i], e.order[i+1:]...)
			break
		}
	}
}

// job is one message handed to a submitter.
type job struct {
	r *run
	m *campaignd.Message
}

// background queues fn on the engine's one path of side effects
// (effects.go); it never blocks, so it is called with e.mu held. Every
// piece of work the engine decides under the lock goes through here.
func (e *Engine) background(fn func()) {
	if !e.fx.do(fn) {
		e.log.Debug("engine closed: background work dropped")
	}
}

// take waits for the next message to submit, round-robin between runs.
func (e *Engine) take(ctx context.Context) (*job, bool) {
	for ctx.Err() == nil {
		e.mu.Lock()
		j := e.pickLocked()
		wake := e.wake
		e.mu.Unlock()
		if j != nil {
			return j, true
		}
		select {
		case <-ctx.Done():
			return nil, false
		case <-wake:
		case <-e.after(250 * time.Millisecond): // the bind and the clock move without telling us
		}
	}
	return nil, false
}

func (e *Engine) pickLocked() *job {
	if len(e.order) == 0 {
		return nil
	}
	if len(e.unrecorded) > 0 {
		e.setWaitLocked(WaitStore)
		e.recordLaterLocked()
		return nil
	}
	if !e.sender.Bound() {
		e.setWaitLocked(WaitUnbound)
		return nil
	}
	if now := e.now(); !e.window.Open(now) {
		next := e.window.NextOpen(now)
		e.setWaitLocked(fmt.Sprintf(waitWindow, e.window, next.In(e.loc).Format("2006-01-02 15:04")))
		if !e.windowArmed {
			e.windowArmed = true
			e.background(func() {
				if err := e.wheel.Schedule(TimerWindow, "open", next); err != nil {
					e.log.Error("schedule send window opening", slog.Any(logError, err))
				}
			})
		}
		return nil
	}
	e.setWaitLocked("")
	n := len(e.order)
	for i := range n {
		r := e.order[(e.rr+i)%n]
		if r.status != campaignd.StatusSending {
			continue
		}
		if m := e.nextLocked(r); m != nil {
			e.rr = (e.rr + i + 1) % n
			return &job{r: r, m: m}
		}
	}
	return nil
}

// nextLocked returns r's next message: retries first, then in index order.
// It starts reading the next page when the buffer runs low.
func (e *Engine) nextLocked(r *run) *campaignd.Message {
	if len(r.buf) < lowWater && !r.loading && !r.exhausted {
		r.loading = true
		e.background(func() { e.fill(r) })
	}
	if len(r.requeue) > 0 {
		m := r.requeue[0]
		r.requeue = r.requeue[1:]
		return m
	}
	if len(r.buf) > 0 {
		m := r.buf[0]
		r.buf[0] = nil
		r.buf = r.buf[1:]
		return m
	}
	return nil
}

// fill reads the next page of r's messages and buffers the queued ones.
func (e *Engine) fill(r *run) {
	e.mu.Lock()
	from := r.pos
	e.mu.Unlock()
	for {
		var page []*campaignd.Message
		scanned, last := 0, from
		err := e.db.Messages(r.bid, from, func(m *campaignd.Message) error {
			scanned++
			last = m.Index + 1
			if m.State == campaignd.StateQueued {
				page = append(page, m)
			} else {
				r.gaps += r.gapRun // only this goroutine touches gaps while loading
				r.gapRun = 0
			}
			if m.State == campaignd.StateQueued && m.Attempts == 0 {
				r.gapRun++
			}
			if scanned >= pageSize {
				return campaignd.ErrStop
			}
			return nil
		})
		if err != nil {
			e.log.Error("read messages", slog.Uint64(logBID, r.bid), slog.Any(logError, err))
			e.mu.Lock()
			r.loading = false
			e.mu.Unlock()
			return // the next take tries again
		}
		// A message refused with a temporary error waits for its retry timer.
		kept := page[:0]
		for _, m := range page {
			if m.Attempts > 0 {
				if _, ok, err := e.wheel.Due(TimerRetry, retryID(r.bid, m.Index)); err != nil || ok {
					continue
				}
			}
			kept = append(kept, m)
		}
		exhausted := scanned < pageSize
		e.mu.Lock()
		for _, m := range kept {
			if _, ok := r.skip[m.Index]; ok {
				delete(r.skip, m.Index)
				continue
			}
			if _, ok := r.claimed[m.Index]; ok {
				continue
			}
			r.claimed[m.Index] = struct{}{}
			r.buf = append(r.buf, m)
		}
		r.pos = last
		from = last
		if exhausted {
			r.exhausted = true
			r.loading = false
			if r.gaps > 0 {
				e.events.DuplicatesAfterCrash(min(r.gaps, e.workers))
				e.log.Warn("messages in flight at the last stop are submitted again",
					slog.Uint64(logBID, r.bid), slog.Int(logCount, min(r.gaps, e.workers)))
			}
			r.gaps, r.gapRun = 0, 0
			e.kickLocked()
			e.maybeCompleteLocked(r)
			e.mu.Unlock()
			return
		}
		if len(r.buf) > 0 {
			r.loading = false
			e.kickLocked()
			e.mu.Unlock()
			return
		}
		e.mu.Unlock() // a page with nothing to send: read on
	}
}

// submitter is one of the workers: it takes messages and submits them.
func (e *Engine) submitter(takeCtx, submitCtx context.Context) {
	defer e.workersWG.Done()
	for {
		j, ok := e.take(takeCtx)
		if !ok {
			return
		}
		e.submit(submitCtx, j)
	}
}

// submit sends one message and records its outcome.
func (e *Engine) submit(ctx context.Context, j *job) {
	m := j.m
	if e.skipSuppressed(ctx, j) { // opted out after ingest (optout_engine.go)
		return
	}
	ids, err := e.sender.Submit(ctx, campaignd.OutMessage{Source: j.r.sender, Dest: m.Recipient, Text: m.Text, Validity: j.r.validity})
	now := e.now()
	c := campaignd.Change{BroadcastID: m.BroadcastID, Index: m.Index, From: campaignd.StateQueued, At: now}
	var se *campaignd.SubmitError
	switch {
	case err == nil:
		c.To, c.SMSCIDs, c.Attempts = campaignd.StateSubmitted, ids, m.Attempts+1
		e.tick(j.r, now)
	case errors.As(err, &se) && se.Temporary && m.Attempts+1 < e.maxAttempts:
		c.Attempts = m.Attempts + 1
		if e.cancelled(j.r) {
			c.To = campaignd.StateCancelled
			break
		}
		c.To = campaignd.StateQueued
		backoff := min(e.retryBackoff<<min(m.Attempts, 16), 5*time.Minute)
		// The timer first: a crash before the state write leaves a timer
		// whose handler finds the message already handled.
		if err := e.wheel.Schedule(TimerRetry, retryID(m.BroadcastID, m.Index), now.Add(backoff)); err != nil {
			e.log.Error("schedule retry", slog.Uint64(logBID, m.BroadcastID), slog.Any(logError, err))
			e.requeue(j)
			return
		}
	case errors.As(err, &se):
		c.To, c.ErrorCode, c.Attempts = campaignd.StateRejected, se.Status, m.Attempts+1
	default:
		// Unknown outcome (timeout, lost bind, shutdown): submit it again.
		if e.cancelled(j.r) {
			c.To = campaignd.StateCancelled
			break
		}
		if !errors.Is(err, context.Canceled) {
			e.log.Warn("submit outcome unknown, resubmitting", slog.Uint64(logBID, m.BroadcastID),
				slog.Uint64("index", uint64(m.Index)), slog.Any(logError, err))
		}
		e.requeue(j)
		if ctx.Err() == nil {
			select { // no busy loop while the client cannot send
			case <-e.after(100 * time.Millisecond):
			case <-ctx.Done():
			}
		}
		return
	}
	// The worker waits until its outcome is written (or known unwritten)
	// before it takes the next message: a submit the SMSC accepted but the
	// store has not recorded is sent again after a crash or a failover, so
	// the submits in flight plus the outcomes not yet written stay within
	// the workers (Window per bind). The writer still commits the workers'
	// outcomes together.
	durable := make(chan struct{})
	defer func() {
		select {
		case <-durable:
		case <-ctx.Done(): // closing: the writer drains what it was handed
		}
	}()
	e.write(&writeReq{changes: []campaignd.Change{c}, after: func(res *campaignd.ChangeResult, err error) {
		defer close(durable)
		e.mu.Lock()
		defer e.mu.Unlock()
		if err != nil {
			// Not recorded. The outcome is known (the SMSC took the message,
			// or refused it): sending it again would be a duplicate. Keep it
			// and write it again; meanwhile nothing more is submitted, so at
			// most the messages in flight are unrecorded if this node stops.
			if !errors.Is(err, errClosed) {
				e.log.Error("recording a submit failed; sending waits for the store", slog.Uint64(logBID, m.BroadcastID),
					slog.Uint64("index", uint64(m.Index)), slog.Any(logError, err))
				e.unrecorded = append(e.unrecorded, outcome{r: j.r, m: m, c: c})
			}
			return
		}
		e.recordedLocked(j.r, m, res.Applied[0])
	}})
}

// recordLaterLocked writes the unrecorded outcomes again, one write at a
// time; the submitters call it (through pickLocked) every time they look
// for work, at least every 250 ms, until the store takes them.
func (e *Engine) recordLaterLocked() {
	if e.recording || len(e.unrecorded) == 0 {
		return
	}
	e.recording = true
	batch := e.unrecorded
	cs := make([]campaignd.Change, len(batch))
	for i, o := range batch {
		cs[i] = o.c
	}
	e.background(func() { // not under mu: write may wait for the writer's queue
		e.write(&writeReq{changes: cs, after: func(res *campaignd.ChangeResult, err error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.recording = false
			if err != nil {
				return // tried again at the next pick
			}
			e.unrecorded = e.unrecorded[len(batch):]
			for i, o := range batch {
				e.recordedLocked(o.r, o.m, res.Applied[i])
			}
			e.log.Info("the store recorded the submits it had refused; sending resumes", slog.Int("messages", len(batch)))
			e.kickLocked()
		}})
	})
}

// recordedLocked ends a submit once its outcome is on the store.
func (e *Engine) recordedLocked(r *run, m *campaignd.Message, applied bool) {
	if !applied {
		e.log.Warn("stale message change ignored", slog.Uint64(logBID, m.BroadcastID), slog.Uint64("index", uint64(m.Index)))
	}
	delete(r.claimed, m.Index)
	if _, ok := r.retryAfter[m.Index]; ok {
		delete(r.retryAfter, m.Index)
		e.background(func() { // not on the writer: the retry reads the store
			e.mu.Lock()
			defer e.mu.Unlock()
			if err := e.retryLocked(m.BroadcastID, m.Index); err != nil {
				e.log.Error("retry message", slog.Uint64(logBID, m.BroadcastID), slog.Any(logError, err))
			}
		})
	}
	e.maybeCompleteLocked(r)
}

func (e *Engine) cancelled(r *run) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return r.status == campaignd.StatusCancelled
}

// requeue puts a claimed message back at the front of its run.
func (e *Engine) requeue(j *job) {
	e.mu.Lock()
	defer e.mu.Unlock()
	j.r.requeue = append([]*campaignd.Message{j.m}, j.r.requeue...)
	e.kickLocked()
}

// tick counts a submit for Progress.
func (e *Engine) tick(r *run, now time.Time) {
	sec := now.Unix()
	e.mu.Lock()
	b := &r.ticks[sec%rateBuckets]
	if b.sec != sec {
		b.sec, b.n = sec, 0
	}
	b.n++
	e.mu.Unlock()
}

// Progress returns broadcast bid's submit rate over the last seconds and
// the time its queued messages need at that rate (0 when unknown).
func (e *Engine) Progress(bid uint64) (ratePerSec float64, eta time.Duration) {
	now := e.now().Unix()
	const span = 10
	e.mu.Lock()
	r := e.runs[bid]
	n := 0
	if r != nil {
		for _, b := range r.ticks {
			if b.sec < now && b.sec >= now-span {
				n += b.n
			}
		}
	}
	e.mu.Unlock()
	if r == nil {
		return 0, 0
	}
	ratePerSec = float64(n) / span
	b, err := e.db.Broadcast(bid)
	if err != nil || ratePerSec == 0 {
		return ratePerSec, 0
	}
	return ratePerSec, time.Duration(float64(b.Counts.Queued) / ratePerSec * float64(time.Second))
}

// maybeCompleteLocked completes r's broadcast once nothing of it is queued
// or in flight.
func (e *Engine) maybeCompleteLocked(r *run) {
	if !r.exhausted || len(r.claimed) > 0 || len(r.requeue) > 0 || len(r.buf) > 0 {
		return
	}
	if e.completing[r.bid] != notCompleting {
		// A check is running and may have read the counts before this
		// last change: it checks again when it ends (else the broadcast
		// could stay "sending" with every message submitted).
		e.completing[r.bid] = completingAgain
		return
	}
	if r.status == campaignd.StatusCancelled {
		return // the cancel pass drops the run
	}
	e.completing[r.bid] = completingOnce
	e.background(func() {
		e.complete(r)
	})
}

func (e *Engine) complete(r *run) {
	defer func() {
		e.mu.Lock()
		again := e.completing[r.bid] == completingAgain
		delete(e.completing, r.bid)
		if again {
			e.maybeCompleteLocked(r)
		}
		e.mu.Unlock()
	}()
	now := e.now()
	done := false
	_, err := e.db.UpdateBroadcast(r.bid, func(b *campaignd.Broadcast) error {
		done = false
		if b.Status != campaignd.StatusSending || b.Counts.Queued > 0 {
			return errNoChange
		}
		b.Status, b.CompletedAt, b.Wait, done = campaignd.StatusCompleted, now, "", true
		return nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		if campaignd.ErrorCode(err) != campaignd.ENOTFOUND {
			e.log.Error("complete broadcast", slog.Uint64(logBID, r.bid), slog.Any(logError, err))
		}
		return
	}
	if done {
		e.log.Info("broadcast completed", slog.Uint64(logBID, r.bid))
		e.mu.Lock()
		if r.status == campaignd.StatusSending && r.exhausted && len(r.claimed) == 0 {
			e.dropRunLocked(r)
		}
		e.mu.Unlock()
	}
}

// completion is where a broadcast's completion check stands.
type completion int

const (
	notCompleting   completion = iota
	completingOnce             // a check is running
	completingAgain            // …and must run again when it ends
)

// errNoChange aborts an UpdateBroadcast that has nothing to do.
var errNoChange = errors.New("no change")

// setWaitLocked records why nothing is sent and shows it on the sending
// broadcasts.
func (e *Engine) setWaitLocked(reason string) {
	if reason == e.wait {
		return
	}
	e.wait = reason
	var bids []uint64
	for _, r := range e.order {
		if r.status == campaignd.StatusSending {
			bids = append(bids, r.bid)
		}
	}
	e.background(func() {
		for _, bid := range bids {
			_, err := e.db.UpdateBroadcast(bid, func(b *campaignd.Broadcast) error {
				e.mu.Lock()
				cur := e.wait
				e.mu.Unlock()
				if b.Wait == cur || (b.Status != campaignd.StatusSending && cur != "") {
					return errNoChange
				}
				b.Wait = cur
				return nil
			})
			if err != nil && !errors.Is(err, errNoChange) && campaignd.ErrorCode(err) != campaignd.ENOTFOUND {
				e.log.Error("record wait reason", slog.Uint64(logBID, bid), slog.Any(logError, err))
			}
		}
	})
}
