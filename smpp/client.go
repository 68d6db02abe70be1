// Package smpp is campaignd's SMPP 3.4 side: a client built on github.com/linxGnu/gosmpp that binds as
// a transceiver or as a transmitter + receiver pair, submits messages with its own window and rate
// limiter, and hands delivery receipts to a callback; and a simulator (an SMSC on a TCP port) for the
// bundled mode and for tests.
//
// gosmpp is used for connections, binds, PDU coding, enquire_link and read deadlines, but not for
// windowing: its WindowedRequestTracking stores a request only after writing it, so a fast response can
// be reported as unexpected. The client keeps its own in-flight map keyed by sequence number, filled
// before the PDU is handed to gosmpp, and its own semaphore and token bucket.
package smpp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linxGnu/gosmpp"
	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"
	"golang.org/x/time/rate"

	"campaignd"
)

// Bind modes for Options.Bind.
const (
	BindTransceiver = "transceiver"
	BindPair        = "pair"
)

// Results reported to Events.SubmitDone.
const (
	ResultOK        = "ok"
	ResultThrottled = "throttled"
	ResultTemporary = "temporary"
	ResultRejected  = "rejected"
	ResultTimeout   = "timeout"
	ResultNotBound  = "not_bound"
)

// Defaults applied by New to zero options.
const (
	DefaultWindow          = 10
	DefaultResponseTimeout = 10 * time.Second
	DefaultEnquireLink     = 30 * time.Second
)

const (
	minBackoff  = time.Second
	maxBackoff  = 60 * time.Second
	stableAfter = 30 * time.Second // a session that lived this long resets the reconnect backoff

	statusRxTAppn = uint32(data.ESME_RX_T_APPN) // deliver_sm_resp status asking the SMSC to redeliver
	esmReceipt    = 0x04                        // esm_class: SMSC delivery receipt
	tonAlpha      = 5
	tonIntl       = 1
	npiISDN       = 1
)

// Log attribute keys.
const (
	logAddr    = "addr"
	logBind    = "bind"
	logReason  = "reason"
	logRetryIn = "retry_in"
	logSeq     = "seq"
	logMsgID   = "message_id"
	logStat    = "stat"
	logStatus  = "status"
	logError   = "error"
	logText    = "text"
)

// submitError is the root's error for a non-zero command_status.
func submitError(status uint32) error {
	return &campaignd.SubmitError{Status: status, Temporary: temporary(status)}
}

// temporary reports whether the SMSC may accept the same message later: throttling (0x58), message
// queue full (0x14) and system error (0x08).
func temporary(status uint32) bool {
	switch data.CommandStatusType(status) {
	case data.ESME_RTHROTTLED, data.ESME_RMSGQFUL, data.ESME_RSYSERR:
		return true
	}
	return false
}

// Events receives the client's measurements; package metrics implements it.
type Events interface {
	SubmitDone(result string, d time.Duration) // one of the Result constants; d from write to response
	SMPPBound(bound bool)
	WindowInUse(n int)
}

type nopEvents struct{}

func (nopEvents) SubmitDone(string, time.Duration) {}
func (nopEvents) SMPPBound(bool)                   {}
func (nopEvents) WindowInUse(int)                  {}

// Options configures a Client. Zero values get the defaults noted.
type Options struct {
	Addr, SystemID, Password, SystemType string

	Bind string // BindTransceiver (default) or BindPair: submits over a transmitter, receipts over a receiver

	TPS    int // submit_sm per second over all binds, each part counts; 0 = unlimited
	Window int // max submit_sm awaiting a response per bind; default 10
	// Binds is how many connections (transceivers, or transmitter + receiver pairs) to open to the
	// same account; default 1. Each has its own Window; they share TPS; receipts come on any.
	Binds int

	// Validity is sent as a relative validity period ("YYMMDDhhmmss000R", days capped at 99);
	// 0 leaves the SMSC's default.
	Validity time.Duration

	ResponseTimeout time.Duration // submit_sm_resp and bind_resp wait; default 10s
	EnquireLink     time.Duration // enquire_link interval; default 30s; reads time out after 2×EnquireLink+ResponseTimeout

	// TON/NPI of numeric addresses. A source with any non-digit is alphanumeric and sent with TON 5,
	// NPI 0; an address written "+digits" is sent without the "+" as TON 1, NPI 1.
	SourceTON, SourceNPI, DestTON, DestNPI byte

	// OnReceipt is called synchronously, on the connection's reader, for each delivery receipt. The
	// deliver_sm_resp is sent after it returns: ESME_ROK on nil, ESME_RX_T_APPN (0x64) on an error so the
	// SMSC redelivers. Keep it short: submit responses on a transceiver wait behind it.
	OnReceipt func(campaignd.Receipt) error
	// OnReceiptAck, when set, is used instead of OnReceipt: it is called on the reader and must not
	// block; it calls ack exactly once, from any goroutine, when the receipt is durable (nil: the
	// deliver_sm_resp says ESME_ROK) or could not be stored (an error: ESME_RX_T_APPN, so the SMSC
	// redelivers). The reader goes on at once, so submit responses never wait behind a receipt. If
	// the session is gone by then, no response is sent and the SMSC delivers the receipt again.
	OnReceiptAck func(r campaignd.Receipt, ack func(error))

	// OnMO is called like OnReceipt for each mobile-originated message (a
	// deliver_sm that is not a receipt, see mo.go); nil acknowledges and drops them.
	OnMO func(MO) error

	OnBound func(bound bool) // called when Bound changes
	Events  Events           // may be nil
	Logger  *slog.Logger     // may be nil
}

// Client is an SMPP client. Create it with New, then Start it; Submit is safe for concurrent use.
type Client struct {
	opts     Options
	log      *slog.Logger
	events   Events
	limiter  *rate.Limiter
	validity string
	ref      atomic.Uint32

	binds []*bind
	next  atomic.Uint32 // round-robin start for acquire
	// wake gets a token when a window slot is freed or a bind comes up, so one waiting submit looks
	// again (a token too many only costs a look).
	wake chan struct{}

	startOnce sync.Once
	closeOnce sync.Once
	cancel    context.CancelFunc
	closed    chan struct{}
	wg        sync.WaitGroup

	notifyMu  sync.Mutex
	lastBound bool
}

// New returns a client with defaults filled in. It does not connect until Start.
func New(opts Options) *Client {
	if opts.Bind == "" {
		opts.Bind = BindTransceiver
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Binds <= 0 {
		opts.Binds = 1
	}
	if opts.ResponseTimeout <= 0 {
		opts.ResponseTimeout = DefaultResponseTimeout
	}
	if opts.EnquireLink <= 0 {
		opts.EnquireLink = DefaultEnquireLink
	}
	c := &Client{
		opts:     opts,
		log:      opts.Logger,
		events:   opts.Events,
		wake:     make(chan struct{}, opts.Window*opts.Binds),
		validity: relativeValidity(opts.Validity),
		closed:   make(chan struct{}),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.events == nil {
		c.events = nopEvents{}
	}
	if opts.TPS > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(opts.TPS), 1)
	}
	for i := range opts.Binds {
		b := &bind{n: i + 1, sem: make(chan struct{}, opts.Window)}
		suffix := ""
		if opts.Binds > 1 {
			suffix = fmt.Sprintf("#%d", i+1)
		}
		if opts.Bind == BindPair {
			b.tx = newLink(c, pdu.Transmitter, "transmitter"+suffix)
			b.rx = newLink(c, pdu.Receiver, "receiver"+suffix)
		} else {
			b.tx = newLink(c, pdu.Transceiver, "transceiver"+suffix)
		}
		c.binds = append(c.binds, b)
	}
	return c
}

// bind is one connection to the SMSC for submits (a transceiver, or the transmitter of a pair) with
// its own window, and the receiver of a pair.
type bind struct {
	n   int
	tx  *link
	rx  *link // nil for a transceiver
	sem chan struct{}
}

// BindState is the state of one bind, for readiness and the console.
type BindState struct {
	Name     string // "transceiver", "transmitter#2", ...
	Bound    bool
	InFlight int // submit_sm awaiting a response
}

// Binds reports the state of each bind; a pair reports its transmitter and its receiver.
func (c *Client) Binds() []BindState {
	var out []BindState
	for _, b := range c.binds {
		out = append(out, BindState{Name: b.tx.name, Bound: b.tx.bound.Load(), InFlight: len(b.sem)})
		if b.rx != nil {
			out = append(out, BindState{Name: b.rx.name, Bound: b.rx.bound.Load()})
		}
	}
	return out
}

// Receiver takes what the SMSC sends the client: delivery receipts, acknowledged once they are
// durable (as with Options.OnReceiptAck), and changes of Bound. The sending engine is one.
type Receiver interface {
	QueueReceipt(r campaignd.Receipt, ack func(error))
	SMSCBound(bound bool)
}

// ReceiveWith hands receipts and changes of Bound to r, in place of Options.OnReceiptAck and
// OnBound. Call it before Start: the client is built first, since r needs it to send, and nothing
// arrives before Start.
func (c *Client) ReceiveWith(r Receiver) {
	c.opts.OnReceiptAck = r.QueueReceipt
	c.opts.OnBound = r.SMSCBound
}

// Start connects in the background and keeps reconnecting (backoff 1s doubling to 60s) until Close
// or until ctx ends.
func (c *Client) Start(ctx context.Context) {
	c.startOnce.Do(func() {
		ctx, c.cancel = context.WithCancel(ctx)
		for _, l := range c.links() {
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				l.run(ctx)
			}()
		}
	})
}

// Close unbinds, stops the connection loops and waits for them until ctx ends. Submits in progress
// return campaignd.ErrNotBound.
func (c *Client) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.startOnce.Do(func() {}) // a later Start does nothing
		if c.cancel != nil {
			c.cancel()
		}
	})
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("smpp: close: %w", ctx.Err())
	}
}

// Bound reports whether the client can send and hear receipts: some bind can submit and, with pairs,
// some receiver is up. With one bind it is up entirely (both halves of a pair).
func (c *Client) Bound() bool {
	tx, rx := false, false
	for _, b := range c.binds {
		tx = tx || b.tx.bound.Load()
		rx = rx || b.rx == nil || b.rx.bound.Load()
	}
	return tx && rx
}

func (c *Client) links() []*link {
	var out []*link
	for _, b := range c.binds {
		out = append(out, b.tx)
		if b.rx != nil {
			out = append(out, b.rx)
		}
	}
	return out
}

// inUse is the number of submits awaiting a response over all binds.
func (c *Client) inUse() int {
	n := 0
	for _, b := range c.binds {
		n += len(b.sem)
	}
	return n
}

// wakeN lets up to n waiting submits look for a slot again.
func (c *Client) wakeN(n int) {
	for range n {
		select {
		case c.wake <- struct{}{}:
		default:
			return
		}
	}
}

// notifyBound reports a change of Bound to OnBound and Events, in order.
func (c *Client) notifyBound() {
	c.notifyMu.Lock()
	defer c.notifyMu.Unlock()
	b := c.Bound()
	if b == c.lastBound {
		return
	}
	c.lastBound = b
	c.events.SMPPBound(b)
	if c.opts.OnBound != nil {
		c.opts.OnBound(b)
	}
}

// Submit sends m, split into as many parts as it needs, and returns one normalised SMSC message id per
// part. For each part it waits for a bound session, a window slot and a rate token, sends the
// submit_sm and waits for its response. Errors: campaignd.ErrSubmitTimeout, campaignd.ErrNotBound, *campaignd.SubmitError (including
// local refusals: 0x01 text too long, 0x0A/0x0B bad source/destination address) or ctx's error. When
// part k fails, the ids of the parts before it are returned with the error.
//
// If ctx ends while a response is awaited, Submit returns at once; the window slot stays taken until
// the response, the timeout or the end of the session.
func (c *Client) Submit(ctx context.Context, m campaignd.OutMessage) (ids []string, err error) {
	parts, err := c.build(m)
	if err != nil {
		return nil, err
	}
	ids = make([]string, 0, len(parts))
	for _, p := range parts {
		id, err := c.submitPart(ctx, p)
		if err != nil {
			return ids, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// build turns m into submit_sm PDUs, one per part.
func (c *Client) build(m campaignd.OutMessage) ([]*pdu.SubmitSM, error) {
	coding, payloads := encodeParts(m.Text)
	if len(payloads) > maxParts {
		return nil, submitError(uint32(data.ESME_RINVMSGLEN))
	}
	src, err := address(m.Source, c.opts.SourceTON, c.opts.SourceNPI, true)
	if err != nil {
		return nil, submitError(uint32(data.ESME_RINVSRCADR))
	}
	dst, err := address(m.Dest, c.opts.DestTON, c.opts.DestNPI, false)
	if err != nil || m.Dest == "" {
		return nil, submitError(uint32(data.ESME_RINVDSTADR))
	}
	enc := data.GSM7BIT
	if coding == codingUCS2 {
		enc = data.UCS2
	}
	ref := byte(c.ref.Add(1))
	out := make([]*pdu.SubmitSM, len(payloads))
	for i, payload := range payloads {
		sm := pdu.NewSubmitSM().(*pdu.SubmitSM)
		sm.SourceAddr, sm.DestAddr = src, dst
		sm.ValidityPeriod = c.validity
		if m.Validity > 0 {
			sm.ValidityPeriod = relativeValidity(m.Validity)
		}
		sm.RegisteredDelivery = 1 // final receipt, success or failure
		if m.NoReceipt {
			sm.RegisteredDelivery = 0
		}
		if len(payloads) > 1 {
			sm.EsmClass |= data.SM_UDH_GSM
			payload = append(concatUDH(ref, len(payloads), i+1), payload...)
		}
		if err := sm.Message.SetMessageDataWithEncoding(payload, enc); err != nil {
			return nil, submitError(uint32(data.ESME_RINVMSGLEN))
		}
		out[i] = sm
	}
	return out, nil
}

// address builds an SMPP address; see Options for the TON/NPI rules.
func address(a string, ton, npi byte, source bool) (pdu.Address, error) {
	switch {
	case len(a) > 1 && a[0] == '+' && allDigits(a[1:]):
		a, ton, npi = a[1:], tonIntl, npiISDN
	case source && a != "" && !allDigits(a):
		ton, npi = tonAlpha, 0
	}
	return pdu.NewAddressWithTonNpiAddr(ton, npi, a)
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// relativeValidity formats d as an SMPP relative time, "YYMMDDhhmmss000R" (years and months left 0).
func relativeValidity(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	s := int64(d / time.Second)
	days := min(s/86400, 99)
	s -= days * 86400
	if days == 99 {
		s = 0
	}
	return fmt.Sprintf("0000%02d%02d%02d%02d000R", days, s/3600, s/60%60, s%60)
}

// acquire takes a window slot on a bound bind, trying them in turn, and returns the bind and its
// session.
func (c *Client) acquire(ctx context.Context) (*bind, *session, error) {
	for {
		start := int(c.next.Add(1))
		for i := range c.binds {
			b := c.binds[(start+i)%len(c.binds)]
			if !b.tx.bound.Load() {
				continue
			}
			select {
			case b.sem <- struct{}{}:
			default:
				continue
			}
			if s := b.tx.session(); s != nil {
				c.events.WindowInUse(c.inUse())
				return b, s, nil
			}
			<-b.sem // went down meanwhile
		}
		select {
		case <-c.wake:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-c.closed:
			return nil, nil, fmt.Errorf("%w: client closed", campaignd.ErrNotBound)
		}
	}
}

func (c *Client) release(b *bind) {
	<-b.sem
	c.events.WindowInUse(c.inUse())
	c.wakeN(1)
}

// submitPart sends one submit_sm and waits for its response.
func (c *Client) submitPart(ctx context.Context, sm *pdu.SubmitSM) (string, error) {
	for {
		b, s, err := c.acquire(ctx)
		if err != nil {
			return "", err
		}
		id, again, err := c.submitOn(ctx, b, s, sm)
		if !again {
			return id, err
		}
	}
}

// submitOn sends sm on session s of bind b, whose window slot the caller holds, and waits for the
// response. again is true when sm was not written (the session went down): the slot is released and
// the caller sends it elsewhere.
func (c *Client) submitOn(ctx context.Context, b *bind, s *session, sm *pdu.SubmitSM) (id string, again bool, err error) {
	handedOff := false
	defer func() {
		if !handedOff {
			c.release(b)
		}
	}()
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx); err != nil {
			if ctx.Err() != nil {
				return "", false, ctx.Err()
			}
			// The next token comes after ctx's deadline.
			return "", false, fmt.Errorf("smpp: rate limit: %w", context.DeadlineExceeded)
		}
	}
	// A fresh sequence number per attempt, registered before gosmpp can write the PDU, so the
	// response always finds its waiter.
	sm.AssignSequenceNumber()
	seq := sm.GetSequenceNumber()
	ch, ok := s.register(seq)
	if !ok {
		return "", true, nil // the session went down while we waited: send it on another
	}
	start := time.Now()
	if err := s.gs.Transmitter().Submit(sm); err != nil {
		s.forget(seq)
		s.markDown("submit: " + err.Error())
		return "", true, nil // never written: safe to send on another session
	}
	timer := time.NewTimer(c.opts.ResponseTimeout)
	id, cancelled, err := c.await(ctx.Done(), s, seq, ch, start, timer)
	if cancelled {
		// Keep the slot until the response settles, so the window holds on the wire.
		// The wait ends by the timeout at the latest, or when Close ends the session.
		handedOff = true
		go func() {
			defer c.release(b)
			_, _, _ = c.await(nil, s, seq, ch, start, timer)
		}()
		return "", false, ctx.Err()
	}
	timer.Stop()
	return id, false, err
}

// await waits for the response to seq. cancelled is true when cancel fired first; the wait can then be
// resumed with the same arguments and a nil cancel.
func (c *Client) await(cancel <-chan struct{}, s *session, seq int32, ch <-chan submitResult, start time.Time, timer *time.Timer) (id string, cancelled bool, err error) {
	select {
	case r := <-ch:
		id, err = c.result(r, start)
		return id, false, err
	case <-s.done:
		select {
		case r := <-ch:
			id, err = c.result(r, start)
			return id, false, err
		default:
		}
		c.events.SubmitDone(ResultNotBound, time.Since(start))
		return "", false, campaignd.ErrNotBound
	case <-timer.C:
		s.forget(seq)
		c.events.SubmitDone(ResultTimeout, time.Since(start))
		c.log.Warn("submit_sm response timeout, rebinding", slog.Int(logSeq, int(seq)))
		s.markDown("response timeout")
		return "", false, campaignd.ErrSubmitTimeout
	case <-cancel:
		return "", true, nil
	}
}

func (c *Client) result(r submitResult, start time.Time) (string, error) {
	d := time.Since(start)
	if r.status == 0 {
		c.events.SubmitDone(ResultOK, d)
		return NormalizeID(r.id), nil
	}
	switch {
	case data.CommandStatusType(r.status) == data.ESME_RTHROTTLED:
		c.events.SubmitDone(ResultThrottled, d)
	case temporary(r.status):
		c.events.SubmitDone(ResultTemporary, d)
	default:
		c.events.SubmitDone(ResultRejected, d)
	}
	return "", submitError(r.status)
}

// handleDeliver answers a deliver_sm: receipts go to OnReceiptAck (answered later, nil returned) or
// OnReceipt first; other messages (MO) are acked.
func (c *Client) handleDeliver(s *session, d *pdu.DeliverSM) pdu.PDU {
	resp := d.GetResponse()
	if d.EsmClass&esmReceipt == 0 {
		return c.handleMO(d)
	}
	r, ok := receiptFromPDU(d)
	if !ok {
		c.log.Warn("unreadable delivery receipt acknowledged", slog.String(logText, r.Raw))
		return resp
	}
	if c.opts.OnReceiptAck != nil {
		var once atomic.Bool
		c.opts.OnReceiptAck(r, func(err error) {
			if !once.CompareAndSwap(false, true) {
				return
			}
			if err != nil {
				c.log.Warn("receipt not stored, asking for redelivery",
					slog.String(logMsgID, r.MessageID), slog.String(logStat, r.Stat), slog.Any(logError, err))
				resp.(*pdu.DeliverSMResp).CommandStatus = data.ESME_RX_T_APPN
			}
			s.sendResp(resp)
		})
		return nil
	}
	if c.opts.OnReceipt != nil {
		if err := c.opts.OnReceipt(r); err != nil {
			c.log.Warn("receipt not stored, asking for redelivery",
				slog.String(logMsgID, r.MessageID), slog.String(logStat, r.Stat), slog.Any(logError, err))
			resp.(*pdu.DeliverSMResp).CommandStatus = data.ESME_RX_T_APPN
		}
	}
	return resp
}

// sendResp writes a response decided after the reader moved on (a receipt's deliver_sm_resp, once
// the receipt is durable). A session that has ended drops it: the SMSC delivers the receipt again.
func (s *session) sendResp(p pdu.PDU) {
	select {
	case <-s.done:
		return
	default:
	}
	if err := s.gs.Transmitter().Submit(p); err != nil {
		s.l.c.log.Debug("deliver_sm_resp not sent", slog.Any(logError, err))
	}
}

// receiptFromPDU extracts the text and TLVs of a deliver_sm and parses them.
func receiptFromPDU(d *pdu.DeliverSM) (campaignd.Receipt, bool) {
	raw, _ := d.Message.GetMessageData()
	tlvs := make([]TLV, 0, len(d.OptionalParameters))
	for tag, f := range d.OptionalParameters {
		tlvs = append(tlvs, TLV{Tag: uint16(tag), Value: f.Data})
		if uint16(tag) == TagMessagePayload && len(raw) == 0 {
			raw = f.Data
		}
	}
	var text string
	if enc := d.Message.Encoding(); enc != nil && enc.DataCoding() == codingUCS2 {
		text = decodeUCS2(raw)
	} else {
		text = string(raw) // receipt texts are ASCII in every alphabet SMSCs use for them
	}
	return ParseReceipt(text, tlvs...)
}

// link is one bind (transceiver, transmitter or receiver) and the loop that keeps it up.
type link struct {
	c        *Client
	bindType pdu.BindingType
	name     string
	bound    atomic.Bool

	mu  sync.Mutex
	cur *session
}

func newLink(c *Client, t pdu.BindingType, name string) *link {
	return &link{c: c, bindType: t, name: name}
}

// session returns the bound session, nil when the link is down.
func (l *link) session() *session {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}

// run binds, waits for the session to end, and binds again with backoff, until ctx ends.
func (l *link) run(ctx context.Context) {
	log := l.c.log.With(slog.String(logBind, l.name), slog.String(logAddr, l.c.opts.Addr))
	backoff := minBackoff
	for {
		s, err := l.dial(ctx)
		if err == nil {
			log.Info("smpp bound")
			l.up(s)
			select {
			case <-s.done:
			case <-ctx.Done():
			}
			s.markDown("closing")
			_ = s.gs.Close() // sends unbind when the connection is still there
			if time.Since(s.started) >= stableAfter {
				backoff = minBackoff
			}
		}
		if ctx.Err() != nil {
			log.Info("smpp stopped")
			return
		}
		if err != nil {
			log.Warn("smpp bind failed", slog.Any(logError, err), slog.Duration(logRetryIn, backoff))
		} else {
			log.Warn("smpp session lost", slog.String(logReason, s.reason), slog.Duration(logRetryIn, backoff))
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (l *link) up(s *session) {
	l.mu.Lock()
	select {
	case <-s.done: // lost already
	default:
		l.cur = s
		l.bound.Store(true)
	}
	l.mu.Unlock()
	l.c.wakeN(l.c.opts.Window) // submits waiting for a slot may take this bind's
	l.c.notifyBound()
}

// down forgets s if it is the current session.
func (l *link) down(s *session) {
	l.mu.Lock()
	changed := l.cur == s
	if changed {
		l.cur = nil
		l.bound.Store(false)
	}
	l.mu.Unlock()
	if changed {
		l.c.notifyBound()
	}
}

// dial connects and binds one gosmpp session, with rebinding left to run.
func (l *link) dial(ctx context.Context) (*session, error) {
	o := l.c.opts
	s := &session{l: l, done: make(chan struct{}), inflight: make(map[int32]chan submitResult)}
	dialer := func(addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: o.ResponseTimeout}
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		// Bounds the wait for bind_resp; gosmpp sets fresh deadlines for every read after it, the
		// flushConn one for every write.
		_ = nc.SetDeadline(time.Now().Add(o.ResponseTimeout))
		return newFlushConn(nc, o.ResponseTimeout), nil
	}
	auth := gosmpp.Auth{SMSC: o.Addr, SystemID: o.SystemID, Password: o.Password, SystemType: o.SystemType}
	var conn gosmpp.Connector
	switch l.bindType {
	case pdu.Transmitter:
		conn = gosmpp.TXConnector(dialer, auth)
	case pdu.Receiver:
		conn = gosmpp.RXConnector(dialer, auth)
	default:
		conn = gosmpp.TRXConnector(dialer, auth)
	}
	gs, err := gosmpp.NewSession(conn, gosmpp.Settings{
		ReadTimeout:   2*o.EnquireLink + o.ResponseTimeout,
		WriteTimeout:  o.ResponseTimeout,
		EnquireLink:   o.EnquireLink,
		OnAllPDU:      s.onPDU,
		OnSubmitError: s.onSubmitError,
		OnReceivingError: func(err error) {
			l.c.log.Debug("smpp read failed", slog.String(logBind, l.name), slog.Any(logError, err))
		},
		OnClosed: func(st gosmpp.State) { s.markDown("closed: " + st.String()) },
	}, 0)
	if err != nil {
		return nil, fmt.Errorf("smpp: bind %s to %s: %w", l.name, o.Addr, err)
	}
	s.gs = gs
	s.started = time.Now()
	return s, nil
}

// submitResult is what a submit_sm_resp (or generic_nack) carries back to the waiting Submit.
type submitResult struct {
	id     string
	status uint32
}

// session is one bound gosmpp session and the submits awaiting a response on it.
type session struct {
	l       *link
	gs      *gosmpp.Session
	started time.Time
	done    chan struct{}
	once    sync.Once
	reason  string // why it ended; written once before done is closed

	mu       sync.Mutex
	inflight map[int32]chan submitResult
}

// register records a waiter for seq; false when the session is already down.
func (s *session) register(seq int32) (<-chan submitResult, bool) {
	ch := make(chan submitResult, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return nil, false
	default:
	}
	s.inflight[seq] = ch
	return ch, true
}

func (s *session) forget(seq int32) {
	s.mu.Lock()
	delete(s.inflight, seq)
	s.mu.Unlock()
}

// complete hands a response to its waiter; false for a response nobody waits for (late or unknown).
func (s *session) complete(seq int32, r submitResult) bool {
	s.mu.Lock()
	ch, ok := s.inflight[seq]
	delete(s.inflight, seq)
	s.mu.Unlock()
	if ok {
		ch <- r
	}
	return ok
}

// markDown ends the session once: waiters see done, the link stops handing it out.
func (s *session) markDown(reason string) {
	s.once.Do(func() {
		s.mu.Lock()
		s.reason = reason
		close(s.done)
		s.mu.Unlock()
		s.l.down(s)
	})
}

// onPDU handles every PDU gosmpp reads; the returned PDU is sent as the answer.
func (s *session) onPDU(p pdu.PDU) (pdu.PDU, bool) {
	c := s.l.c
	switch pp := p.(type) {
	case *pdu.SubmitSMResp:
		if !s.complete(pp.SequenceNumber, submitResult{id: pp.MessageID, status: uint32(pp.CommandStatus)}) {
			c.log.Warn("submit_sm_resp for no pending submit", slog.Int(logSeq, int(pp.SequenceNumber)),
				slog.String(logMsgID, pp.MessageID), slog.Uint64(logStatus, uint64(pp.CommandStatus)))
		}
		return nil, false
	case *pdu.GenericNack:
		s.complete(pp.SequenceNumber, submitResult{status: uint32(pp.CommandStatus)})
		return nil, false
	case *pdu.DeliverSM:
		return c.handleDeliver(s, pp), false
	case *pdu.EnquireLink:
		return pp.GetResponse(), false
	case *pdu.Unbind:
		s.markDown("unbind from SMSC")
		return pp.GetResponse(), true
	default:
		if p.CanResponse() {
			return p.GetResponse(), false // data_sm, alert_notification and the like: ack and ignore
		}
		return nil, false
	}
}

// onSubmitError is gosmpp's report of a failed write. The PDU may be half written, and gosmpp keeps
// the connection after some write errors, so the session is ended here: its waiters get campaignd.ErrNotBound
// at once instead of campaignd.ErrSubmitTimeout later.
func (s *session) onSubmitError(_ pdu.PDU, err error) {
	s.markDown("write: " + err.Error())
}
