package smpp

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"
)

// SimMode is how the simulator answers submit_sm.
type SimMode int

const (
	// SimNormal answers every submit_sm with a message id and schedules its receipt.
	SimNormal SimMode = iota
	// SimThrottle answers every submit_sm with ESME_RTHROTTLED (0x58).
	SimThrottle
	// SimSilent never answers submit_sm.
	SimSilent
	// SimDrop closes every connection when a submit_sm arrives (and keeps doing so until the mode changes).
	SimDrop
)

const (
	simSystemID       = "campaignd-sim"
	simRedeliverAfter = 100 * time.Millisecond
	simReceiptTextLen = 20
	simHoldIdle       = time.Second // held receipts go out when no new one came for this long
)

// Message id schemes of the simulator (SimOptions.IDScheme): how it numbers messages in submit_sm_resp
// and in receipts (receipted_message_id TLV and the text's id:).
const (
	SimIDDecimal    = "decimal"     // a decimal counter everywhere (the default)
	SimIDHex        = "hex"         // an upper-case hex counter in responses, lower-case in receipts
	SimIDHexDecimal = "hex-decimal" // hex in submit_sm_resp, the same number in decimal in receipts
	SimIDDecimalHex = "decimal-hex" // decimal in submit_sm_resp, the same number in hex in receipts
	SimIDPadded     = "padded"      // zero-padded decimal (10 digits) in responses, unpadded in receipts
	SimIDUUID       = "uuid"        // UUID-style, upper-case in responses, lower-case in receipts
)

// SimIDSchemes lists the id schemes.
var SimIDSchemes = []string{SimIDDecimal, SimIDHex, SimIDHexDecimal, SimIDDecimalHex, SimIDPadded, SimIDUUID}

// SimOptions configures a Simulator.
type SimOptions struct {
	Listen             string // default "127.0.0.1:0"
	SystemID, Password string // empty accepts any
	// DeliveredPercent of receipts say DELIVRD, the rest UNDELIV, decided by a counter so that of every
	// 100 receipts exactly that many are delivered, spread evenly. Clamped to 0..100.
	DeliveredPercent int
	ReceiptDelay     time.Duration // from submit_sm to its deliver_sm
	// ResponseDelay holds every submit_sm_resp back this long, so that submits pile up in flight
	// (used to check a client's window).
	ResponseDelay time.Duration
	Logger        *slog.Logger
	// Decide, when set and returning non-empty, gives the final stat of a part (1-based) instead of
	// DeliveredPercent.
	Decide func(dest string, part int, text string) string
	// OnSubmit, when set, is called for every submit_sm received, before it is answered.
	OnSubmit func(SimSubmit)
	// TrackDests counts submit_sm per destination in SimStats.PerDest (off by default: the map grows
	// with every new number).
	TrackDests bool
	// IDScheme is how message ids are written (SimIDDecimal when empty); IDStart is the first id of
	// the counter (default 1).
	IDScheme string
	IDStart  uint64
	// ReceiptBatch, when > 0, holds receipts (after ReceiptDelay) until that many are waiting, or
	// until none came for a second, or until ReleaseReceipts, and then sends them in random order:
	// receipts that come long after thousands of later submits, scrambled.
	ReceiptBatch int
}

// SimSubmit is a submit_sm as the simulator received it.
type SimSubmit struct {
	SystemID           string
	Source, Dest       string
	SourceTON, DestTON byte
	DataCoding         byte // 0xFF when gosmpp does not know the coding
	ESMClass           byte
	RegisteredDelivery byte
	Validity           string
	UDH                []byte // including its length octet; nil without UDHI
	Ref, Part, Parts   int    // from the concatenation IE (8- or 16-bit reference); 0, 1, 1 without one
	Text               string // the part's text, decoded from GSM-7 or UCS-2
	MessageID          string // the id answered; empty when not answered with ESME_ROK
}

// SimStats counts what the simulator has seen since Open.
type SimStats struct {
	Submits        int64 // submit_sm received, whatever the mode
	ReceiptsSent   int64 // deliver_sm written, redeliveries and duplicates included
	ReceiptsAcked  int64 // deliver_sm_resp with ESME_ROK
	ReceiptsNacked int64 // deliver_sm_resp with an error status (redelivered later)
	Binds          int64 // successful binds
	EnquireLinks   int64 // enquire_link received
	Conns          int   // connections open now
	MaxOutstanding int   // most submit_sm awaiting an answer on one connection at any time
	// PerDest counts, per destination, the submit_sm the simulator accepted or left unanswered (the ones
	// a handset could get; throttled and dropped ones are not counted). Each part counts. Only filled
	// with SimOptions.TrackDests.
	PerDest map[string]int
}

// Simulator is an SMSC speaking SMPP 3.4 over TCP, for the bundled mode and for tests.
type Simulator struct {
	o   SimOptions
	log *slog.Logger
	ln  net.Listener

	mode          atomic.Int32
	receiptsFirst atomic.Bool
	dupReceipts   atomic.Bool
	nextID        atomic.Uint64
	nextStat      atomic.Uint64

	submits, receiptsSent, acked, nacked, binds, enquireLinks atomic.Int64

	mu             sync.Mutex
	conns          map[*simConn]struct{}
	perDest        map[string]int
	maxOutstanding int
	pending        []*simReceipt // receipts waiting for a receiver bind

	qmu   sync.Mutex
	queue []queuedReceipt // FIFO: every receipt waits the same ReceiptDelay
	qwake chan struct{}

	hmu      sync.Mutex
	held     []*simReceipt // ReceiptBatch: waiting for the batch to fill
	heldLast time.Time
	rnd      *rand.Rand

	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup
}

type queuedReceipt struct {
	due time.Time
	r   *simReceipt
}

// simReceipt is a receipt to deliver, kept until a deliver_sm_resp with ESME_ROK acknowledges it.
type simReceipt struct {
	systemID      string
	src, dst      string // of the original submit; the deliver_sm goes from dst to src
	tlvID, textID string
	stat, errCode string
	submitted     time.Time
	text          string
	mo            *SimMO // an MO to deliver instead of a receipt (sim_mo.go)
}

// NewSimulator returns a simulator; Open starts it.
func NewSimulator(o SimOptions) *Simulator {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	o.DeliveredPercent = min(max(o.DeliveredPercent, 0), 100)
	s := &Simulator{
		o:       o,
		log:     o.Logger,
		conns:   make(map[*simConn]struct{}),
		perDest: make(map[string]int),
		qwake:   make(chan struct{}, 1),
		closed:  make(chan struct{}),
		rnd:     rand.New(rand.NewPCG(1, 2)),
	}
	if o.IDStart > 0 {
		s.nextID.Store(o.IDStart - 1)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Open listens and serves in the background.
func (s *Simulator) Open() error {
	ln, err := net.Listen("tcp", s.o.Listen)
	if err != nil {
		return fmt.Errorf("smpp: simulator listen %s: %w", s.o.Listen, err)
	}
	s.ln = ln
	s.log.Info("smsc simulator listening", slog.String(logAddr, ln.Addr().String()))
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.accept()
	}()
	go func() {
		defer s.wg.Done()
		s.runQueue()
	}()
	if s.o.ReceiptBatch > 0 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.releaseIdle()
		}()
	}
	return nil
}

// ValidSimIDScheme reports whether v is an id scheme ("" is the default).
func ValidSimIDScheme(v string) bool {
	return v == "" || slices.Contains(SimIDSchemes, v)
}

// ReleaseReceipts sends every receipt held for ReceiptBatch now, in random order.
func (s *Simulator) ReleaseReceipts() {
	s.hmu.Lock()
	h := s.held
	s.held = nil
	s.rnd.Shuffle(len(h), func(i, j int) { h[i], h[j] = h[j], h[i] })
	s.hmu.Unlock()
	for _, r := range h {
		s.deliver(r)
	}
}

// hold keeps r for a batch, releasing the batch once full.
func (s *Simulator) hold(r *simReceipt) {
	s.hmu.Lock()
	s.held = append(s.held, r)
	s.heldLast = time.Now()
	full := len(s.held) >= s.o.ReceiptBatch
	s.hmu.Unlock()
	if full {
		s.ReleaseReceipts()
	}
}

// releaseIdle sends held receipts once none came for simHoldIdle, so a last partial batch goes out.
func (s *Simulator) releaseIdle() {
	t := time.NewTicker(simHoldIdle / 4)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
		}
		s.hmu.Lock()
		idle := len(s.held) > 0 && time.Since(s.heldLast) >= simHoldIdle
		s.hmu.Unlock()
		if idle {
			s.ReleaseReceipts()
		}
	}
}

// Addr is the listening address, once Open has succeeded.
func (s *Simulator) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops listening, drops every connection and waits for the simulator's goroutines.
func (s *Simulator) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		if s.ln != nil {
			err = s.ln.Close()
		}
		s.dropAll()
	})
	s.wg.Wait()
	return err
}

// SetMode changes how submits are answered from the next one on.
func (s *Simulator) SetMode(m SimMode) { s.mode.Store(int32(m)) }

// SetReceiptsFirst makes the simulator send each receipt before the submit_sm_resp it belongs to.
func (s *Simulator) SetReceiptsFirst(on bool) { s.receiptsFirst.Store(on) }

// SetDuplicateReceipts makes the simulator send every receipt twice.
func (s *Simulator) SetDuplicateReceipts(on bool) { s.dupReceipts.Store(on) }

// SendReceipt delivers a receipt for msgID with stat now (to the first receiver that binds, if none is
// bound), whether or not the id was ever issued.
func (s *Simulator) SendReceipt(msgID, stat string) error {
	select {
	case <-s.closed:
		return errors.New("smpp: simulator closed")
	default:
	}
	s.deliver(&simReceipt{tlvID: msgID, textID: msgID, stat: stat, errCode: errCodeFor(stat), submitted: time.Now()})
	return nil
}

// Stats returns a snapshot of the counters.
func (s *Simulator) Stats() SimStats {
	st := SimStats{
		Submits:        s.submits.Load(),
		ReceiptsSent:   s.receiptsSent.Load(),
		ReceiptsAcked:  s.acked.Load(),
		ReceiptsNacked: s.nacked.Load(),
		Binds:          s.binds.Load(),
		EnquireLinks:   s.enquireLinks.Load(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Conns = len(s.conns)
	st.MaxOutstanding = s.maxOutstanding
	st.PerDest = make(map[string]int, len(s.perDest))
	for k, v := range s.perDest {
		st.PerDest[k] = v
	}
	return st
}

func (s *Simulator) accept() {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closed:
			default:
				s.log.Error("smsc simulator accept", slog.Any(logError, err))
			}
			return
		}
		c := &simConn{s: s, nc: nc, signal: make(chan struct{}, 1), closed: make(chan struct{}),
			awaiting: make(map[int32]*simReceipt)}
		s.mu.Lock()
		select {
		case <-s.closed:
			s.mu.Unlock()
			_ = nc.Close()
			return
		default:
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(2)
		go func() {
			defer s.wg.Done()
			c.read()
		}()
		go func() {
			defer s.wg.Done()
			c.write()
		}()
	}
}

func (s *Simulator) dropAll() {
	s.mu.Lock()
	conns := make([]*simConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}

// receiverFor picks a connection bound to receive, preferring one of the same system id.
func (s *Simulator) receiverFor(systemID string) *simConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var any *simConn
	for c := range s.conns {
		if !c.canReceive() {
			continue
		}
		if c.systemID == systemID {
			return c
		}
		any = c
	}
	return any
}

// deliver sends r to a receiver now, or keeps it until one binds.
func (s *Simulator) deliver(r *simReceipt) {
	copies := 1
	if s.dupReceipts.Load() {
		copies = 2
	}
	for range copies {
		for {
			c := s.receiverFor(r.systemID)
			if c == nil {
				s.mu.Lock()
				s.pending = append(s.pending, r)
				s.mu.Unlock()
				break
			}
			if c.sendReceipt(r) {
				break
			}
		}
	}
}

// flushPending hands the receipts kept for lack of a receiver to a new receiver bind.
func (s *Simulator) flushPending() {
	s.mu.Lock()
	p := s.pending
	s.pending = nil
	s.mu.Unlock()
	for _, r := range p {
		s.deliver(r)
	}
}

func (s *Simulator) schedule(r *simReceipt) {
	if s.o.ReceiptDelay <= 0 {
		s.send(r)
		return
	}
	s.qmu.Lock()
	s.queue = append(s.queue, queuedReceipt{due: time.Now().Add(s.o.ReceiptDelay), r: r})
	s.qmu.Unlock()
	select {
	case s.qwake <- struct{}{}:
	default:
	}
}

// runQueue delivers scheduled receipts when due. The queue is in due order because every receipt
// waits the same ReceiptDelay, so only its head needs a timer.
func (s *Simulator) runQueue() {
	for {
		s.qmu.Lock()
		var due []*simReceipt
		var wait time.Duration
		now := time.Now()
		for len(s.queue) > 0 {
			if d := s.queue[0].due.Sub(now); d > 0 {
				wait = d
				break
			}
			due = append(due, s.queue[0].r)
			s.queue[0] = queuedReceipt{}
			s.queue = s.queue[1:]
		}
		empty := len(s.queue) == 0
		s.qmu.Unlock()
		for _, r := range due {
			s.send(r)
		}
		if len(due) > 0 {
			continue
		}
		if empty {
			select {
			case <-s.qwake:
			case <-s.closed:
				return
			}
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.closed:
			t.Stop()
			return
		}
	}
}

// send delivers a receipt that has waited ReceiptDelay, or holds it for a batch.
func (s *Simulator) send(r *simReceipt) {
	if s.o.ReceiptBatch > 0 {
		s.hold(r)
		return
	}
	s.deliver(r)
}

// decide returns the final stat of a part.
func (s *Simulator) decide(dest string, part int, text string) string {
	if s.o.Decide != nil {
		if st := s.o.Decide(dest, part, text); st != "" {
			return st
		}
	}
	// Spread the delivered ones evenly: receipt k is delivered when
	// ⌈(k+1)·p/100⌉ steps past ⌈k·p/100⌉, so the first one is delivered
	// whenever p > 0 (a demo's first message should not fail).
	k, p := s.nextStat.Add(1)-1, uint64(s.o.DeliveredPercent)
	if ((k+1)*p+99)/100 > (k*p+99)/100 {
		return StatDelivered
	}
	return StatUndelivered
}

// simIDs formats message id n in scheme: as submit_sm_resp gives it, and as the receipt's TLV and
// text give it.
func simIDs(scheme string, n uint64) (resp, tlv, text string) {
	d, h := strconv.FormatUint(n, 10), strconv.FormatUint(n, 16)
	switch scheme {
	case SimIDHex:
		return strings.ToUpper(h), h, h
	case SimIDHexDecimal:
		return strings.ToUpper(h), d, d
	case SimIDDecimalHex:
		return d, strings.ToUpper(h), h
	case SimIDPadded:
		return fmt.Sprintf("%010d", n), d, fmt.Sprintf("%d", n)
	case SimIDUUID:
		x := n * 0x9E3779B97F4A7C15 // spread the counter over the digits
		u := fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", uint32(x>>32), uint16(x>>16), n>>36&0xFFF, n>>24&0xFFF, n&0xFFFFFFFFFFFF)
		return strings.ToUpper(u), u, u
	default:
		return d, d, d
	}
}

func errCodeFor(stat string) string {
	if stat == StatDelivered || stat == StatAccepted {
		return "000"
	}
	return "001"
}

// simConn is one client connection: a reader that never blocks on output, and a writer that batches.
type simConn struct {
	s  *Simulator
	nc net.Conn

	mu          sync.Mutex
	bound       bool
	submitter   bool
	receiver    bool
	systemID    string
	outstanding int
	awaiting    map[int32]*simReceipt // deliver_sm sent, no deliver_sm_resp yet
	out         [][]byte              // unbounded, so a slow peer never stalls the reader (no deadlock)
	closeAfter  bool                  // close once out is flushed
	isClosed    bool

	signal    chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *simConn) canReceive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.receiver && !c.isClosed
}

func (c *simConn) read() {
	defer c.close()
	br := bufio.NewReaderSize(c.nc, 64<<10)
	for {
		p, err := pdu.Parse(br)
		if err != nil {
			return
		}
		c.handle(p)
	}
}

func (c *simConn) write() {
	defer c.close()
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	var batch [][]byte
	for {
		c.mu.Lock()
		batch, c.out = c.out, batch[:0]
		closeAfter := c.closeAfter
		c.mu.Unlock()
		if len(batch) == 0 {
			if closeAfter {
				return
			}
			select {
			case <-c.signal:
				continue
			case <-c.closed:
				return
			}
		}
		for i, b := range batch {
			_, _ = bw.Write(b)
			batch[i] = nil
		}
		if err := bw.Flush(); err != nil {
			return
		}
	}
}

// send queues p for writing; false when the connection is closed.
func (c *simConn) send(p pdu.PDU) bool {
	buf := pdu.NewBuffer(make([]byte, 0, 64))
	p.Marshal(buf)
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		return false
	}
	c.out = append(c.out, buf.Bytes())
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
	return true
}

// sendAndClose queues p and closes the connection once it is written.
func (c *simConn) sendAndClose(p pdu.PDU) {
	c.send(p)
	c.mu.Lock()
	c.closeAfter = true
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// close ends the connection; receipts it had not had acknowledged are delivered again.
func (c *simConn) close() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.isClosed = true
		unacked := make([]*simReceipt, 0, len(c.awaiting))
		for _, r := range c.awaiting {
			unacked = append(unacked, r)
		}
		c.awaiting = nil
		c.mu.Unlock()
		close(c.closed)
		_ = c.nc.Close()
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
		c.s.log.Debug("smsc simulator connection closed", slog.String(logBind, c.systemID))
		select {
		case <-c.s.closed:
		default:
			for _, r := range unacked {
				c.s.deliver(r)
			}
		}
	})
}

func (c *simConn) handle(p pdu.PDU) {
	switch pp := p.(type) {
	case *pdu.BindRequest:
		c.handleBind(pp)
	case *pdu.EnquireLink:
		c.s.enquireLinks.Add(1)
		c.send(pp.GetResponse())
	case *pdu.Unbind:
		c.sendAndClose(pp.GetResponse())
	case *pdu.SubmitSM:
		c.handleSubmit(pp)
	case *pdu.DeliverSMResp:
		c.handleDeliverResp(pp)
	case *pdu.EnquireLinkResp, *pdu.UnbindResp, *pdu.GenericNack:
	default:
		if p.CanResponse() {
			n := pdu.NewGenericNack()
			n.SetSequenceNumber(p.GetSequenceNumber())
			n.(*pdu.GenericNack).CommandStatus = data.ESME_RINVCMDID
			c.send(n)
		}
	}
}

func (c *simConn) handleBind(b *pdu.BindRequest) {
	resp := pdu.NewBindResp(*b)
	resp.SystemID = simSystemID
	o := c.s.o
	c.mu.Lock()
	already := c.bound
	c.mu.Unlock()
	switch {
	case already:
		resp.CommandStatus = data.ESME_RALYBND
		c.send(resp)
		return
	case o.SystemID != "" && b.SystemID != o.SystemID:
		resp.CommandStatus = data.ESME_RINVSYSID
	case o.Password != "" && b.Password != o.Password:
		resp.CommandStatus = data.ESME_RINVPASWD
	}
	if resp.CommandStatus != data.ESME_ROK {
		c.sendAndClose(resp)
		return
	}
	c.mu.Lock()
	c.bound = true
	c.systemID = b.SystemID
	c.submitter = b.CommandID == data.BIND_TRANSMITTER || b.CommandID == data.BIND_TRANSCEIVER
	c.receiver = b.CommandID == data.BIND_RECEIVER || b.CommandID == data.BIND_TRANSCEIVER
	receiver := c.receiver
	c.mu.Unlock()
	c.s.binds.Add(1)
	c.send(resp)
	c.s.log.Debug("smsc simulator bound", slog.String(logBind, b.CommandID.String()))
	if receiver {
		c.s.flushPending()
	}
}

// outstandingAdd tracks submits not yet answered on this connection.
func (c *simConn) outstandingAdd(d int) {
	c.mu.Lock()
	c.outstanding += d
	n := c.outstanding
	c.mu.Unlock()
	if d > 0 {
		c.s.mu.Lock()
		c.s.maxOutstanding = max(c.s.maxOutstanding, n)
		c.s.mu.Unlock()
	}
}

func (c *simConn) handleSubmit(sm *pdu.SubmitSM) {
	s := c.s
	resp := sm.GetResponse().(*pdu.SubmitSMResp)
	c.mu.Lock()
	submitter, systemID := c.submitter, c.systemID
	c.mu.Unlock()
	if !submitter {
		resp.CommandStatus = data.ESME_RINVBNDSTS
		c.send(resp)
		return
	}
	s.submits.Add(1)
	dest := sm.DestAddr.Address()
	mode := SimMode(s.mode.Load())
	if mode == SimDrop {
		s.dropAll()
		return
	}
	if s.o.TrackDests && mode != SimThrottle {
		s.mu.Lock()
		s.perDest[dest]++
		s.mu.Unlock()
	}
	c.outstandingAdd(1)
	info := describeSubmit(systemID, sm)
	switch mode {
	case SimSilent:
		s.onSubmit(info)
		return
	case SimThrottle:
		s.onSubmit(info)
		resp.CommandStatus = data.ESME_RTHROTTLED
		c.answer(resp)
		return
	}

	respID, tlvID, textID := simIDs(s.o.IDScheme, s.nextID.Add(1))
	resp.MessageID = respID
	info.MessageID = respID
	s.onSubmit(info)
	var r *simReceipt
	if sm.RegisteredDelivery&0x03 != 0 {
		stat := s.decide(dest, info.Part, info.Text)
		r = &simReceipt{systemID: systemID, src: sm.SourceAddr.Address(), dst: dest, tlvID: tlvID,
			textID: textID, stat: stat, errCode: errCodeFor(stat), submitted: time.Now(), text: info.Text}
	}
	if r != nil && s.receiptsFirst.Load() {
		s.deliver(r)
		r = nil
	}
	c.answer(resp)
	if r != nil {
		s.schedule(r)
	}
}

// answer sends a submit_sm_resp, after ResponseDelay when set.
func (c *simConn) answer(resp *pdu.SubmitSMResp) {
	if d := c.s.o.ResponseDelay; d > 0 {
		time.AfterFunc(d, func() {
			c.outstandingAdd(-1)
			c.send(resp)
		})
		return
	}
	c.outstandingAdd(-1)
	c.send(resp)
}

func (s *Simulator) onSubmit(info SimSubmit) {
	if s.o.OnSubmit != nil {
		s.o.OnSubmit(info)
	}
}

// describeSubmit decodes what the tests and Decide need from a submit_sm.
func describeSubmit(systemID string, sm *pdu.SubmitSM) SimSubmit {
	info := SimSubmit{
		SystemID: systemID, Source: sm.SourceAddr.Address(), Dest: sm.DestAddr.Address(),
		SourceTON: sm.SourceAddr.Ton(), DestTON: sm.DestAddr.Ton(),
		DataCoding: 0xFF, ESMClass: sm.EsmClass, RegisteredDelivery: sm.RegisteredDelivery,
		Validity: sm.ValidityPeriod, Part: 1, Parts: 1,
	}
	if enc := sm.Message.Encoding(); enc != nil {
		info.DataCoding = enc.DataCoding()
	}
	if udh := sm.Message.UDH(); len(udh) > 0 {
		info.UDH, _ = udh.MarshalBinary()
		for _, ie := range udh {
			switch {
			case ie.ID == 0x00 && len(ie.Data) == 3:
				info.Ref, info.Parts, info.Part = int(ie.Data[0]), int(ie.Data[1]), int(ie.Data[2])
			case ie.ID == 0x08 && len(ie.Data) == 4:
				info.Ref = int(ie.Data[0])<<8 | int(ie.Data[1])
				info.Parts, info.Part = int(ie.Data[2]), int(ie.Data[3])
			}
		}
	}
	raw, _ := sm.Message.GetMessageData()
	switch info.DataCoding {
	case codingGSM7:
		info.Text = decodeGSM7(raw)
	case codingUCS2:
		info.Text = decodeUCS2(raw)
	default:
		info.Text = string(raw)
	}
	return info
}

// sendReceipt writes r as a deliver_sm and remembers it until acknowledged; false if c was already
// closed and r is still the caller's to deliver.
func (c *simConn) sendReceipt(r *simReceipt) bool {
	if r.mo != nil {
		return c.sendMO(r)
	}
	d := pdu.NewDeliverSM().(*pdu.DeliverSM)
	d.EsmClass = esmReceipt
	_ = d.SourceAddr.SetAddress(r.dst)
	_ = d.DestAddr.SetAddress(r.src)
	now := time.Now()
	dlvrd := "000"
	if r.stat == StatDelivered {
		dlvrd = "001"
	}
	text := fmt.Sprintf("id:%s sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:%s text:%s",
		r.textID, dlvrd, r.submitted.UTC().Format("0601021504"), now.UTC().Format("0601021504"),
		r.stat, r.errCode, asciiPrefix(r.text, simReceiptTextLen))
	_ = d.Message.SetMessageDataWithEncoding([]byte(text), data.GSM7BIT)
	d.RegisterOptionalParam(pdu.Field{Tag: pdu.TagReceiptedMessageID, Data: append([]byte(r.tlvID), 0)})
	if code, ok := stateCodes[r.stat]; ok {
		d.RegisterOptionalParam(pdu.Field{Tag: pdu.TagMessageStateOption, Data: []byte{code}})
	}
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		return false
	}
	c.awaiting[d.SequenceNumber] = r
	c.mu.Unlock()
	if c.send(d) {
		c.s.receiptsSent.Add(1)
	}
	// Not written means c closed after r entered awaiting, and close() has delivered r elsewhere.
	return true
}

func (c *simConn) handleDeliverResp(resp *pdu.DeliverSMResp) {
	c.mu.Lock()
	r, ok := c.awaiting[resp.SequenceNumber]
	delete(c.awaiting, resp.SequenceNumber)
	c.mu.Unlock()
	if !ok {
		return
	}
	if resp.CommandStatus == data.ESME_ROK {
		c.s.acked.Add(1)
		return
	}
	c.s.nacked.Add(1)
	time.AfterFunc(simRedeliverAfter, func() {
		select {
		case <-c.s.closed:
		default:
			c.s.deliver(r)
		}
	})
}

// asciiPrefix keeps the first n printable ASCII characters of s, so the receipt text stays ASCII.
func asciiPrefix(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= n {
			break
		}
		if r >= 0x20 && r < 0x7F {
			b.WriteRune(r)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}

// StatByDest is a SimOptions.Decide that gives each destination a fixed status by its last digit:
// 7 UNDELIV, 8 EXPIRED, 9 REJECTD, any other DELIVRD. A receipt filed against the wrong message then
// shows as a wrong status.
func StatByDest(dest string, _ int, _ string) string {
	if dest == "" {
		return StatDelivered
	}
	switch dest[len(dest)-1] {
	case '7':
		return StatUndelivered
	case '8':
		return StatExpired
	case '9':
		return StatRejected
	}
	return StatDelivered
}
