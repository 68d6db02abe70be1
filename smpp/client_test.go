package smpp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
)

// MustOpenSim starts a simulator on a loopback port, closed at the end of the test.
func MustOpenSim(tb testing.TB, o SimOptions) *Simulator {
	tb.Helper()
	s := NewSimulator(o)
	if err := s.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// MustStartClient starts a client against sim and waits until it is bound.
func MustStartClient(tb testing.TB, sim *Simulator, o Options) *Client {
	tb.Helper()
	o.Addr = sim.Addr()
	if os.Getenv("SMPP_DEBUG") != "" && o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if o.SystemID == "" {
		o.SystemID = "test"
	}
	c := New(o)
	c.Start(context.Background())
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	testenv.Wait(tb, "bound", c.Bound)
	return c
}

// submits records what the simulator received.
type submits struct {
	mu  sync.Mutex
	all []SimSubmit
}

func (s *submits) add(x SimSubmit) {
	s.mu.Lock()
	s.all = append(s.all, x)
	s.mu.Unlock()
}

func (s *submits) snapshot() []SimSubmit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.all)
}

// receipts records what OnReceipt saw.
type receipts struct {
	mu   sync.Mutex
	all  []campaignd.Receipt
	fail func(campaignd.Receipt) error
}

func (r *receipts) onReceipt(x campaignd.Receipt) error {
	if r.fail != nil {
		if err := r.fail(x); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.all = append(r.all, x)
	r.mu.Unlock()
	return nil
}

func (r *receipts) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.all)
}

func (r *receipts) byID() map[string][]campaignd.Receipt {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string][]campaignd.Receipt)
	for _, x := range r.all {
		m[x.MessageID] = append(m[x.MessageID], x)
	}
	return m
}

// events records Events calls.
type events struct {
	mu        sync.Mutex
	results   map[string]int
	bound     []bool
	maxWindow int
}

func newEvents() *events { return &events{results: make(map[string]int)} }

func (e *events) SubmitDone(result string, _ time.Duration) {
	e.mu.Lock()
	e.results[result]++
	e.mu.Unlock()
}

func (e *events) SMPPBound(b bool) {
	e.mu.Lock()
	e.bound = append(e.bound, b)
	e.mu.Unlock()
}

func (e *events) WindowInUse(n int) {
	e.mu.Lock()
	e.maxWindow = max(e.maxWindow, n)
	e.mu.Unlock()
}

func (e *events) result(r string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.results[r]
}

func TestSubmitEncodingsAndParts(t *testing.T) {
	var got submits
	var rc receipts
	sim := MustOpenSim(t, SimOptions{DeliveredPercent: 100, OnSubmit: got.add})
	c := MustStartClient(t, sim, Options{OnReceipt: rc.onReceipt, Validity: 48 * time.Hour})
	ctx := context.Background()

	tests := []struct {
		name   string
		msg    campaignd.OutMessage
		coding byte
		texts  []string
	}{
		{"single GSM-7", campaignd.OutMessage{Source: "Shop", Dest: "34600000001", Text: "Hola, ¿qué tal? ñ ü €"},
			codingGSM7, []string{"Hola, ¿qué tal? ñ ü €"}},
		{"multipart GSM-7", campaignd.OutMessage{Source: "+34911111111", Dest: "34600000002", Text: strings.Repeat("b", 200)},
			codingGSM7, []string{strings.Repeat("b", 153), strings.Repeat("b", 47)}},
		{"single UCS-2", campaignd.OutMessage{Source: "Shop", Dest: "34600000003", Text: "canción 😀"},
			codingUCS2, []string{"canción 😀"}},
		{"multipart UCS-2", campaignd.OutMessage{Source: "Shop", Dest: "34600000004", Text: strings.Repeat("á", 100)},
			codingUCS2, []string{strings.Repeat("á", 67), strings.Repeat("á", 33)}},
	}
	var allIDs []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(got.snapshot())
			ids, err := c.Submit(ctx, tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) != len(tt.texts) {
				t.Fatalf("got %d ids, want %d", len(ids), len(tt.texts))
			}
			allIDs = append(allIDs, ids...)
			parts := got.snapshot()[before:]
			if len(parts) != len(tt.texts) {
				t.Fatalf("simulator got %d parts, want %d", len(parts), len(tt.texts))
			}
			for i, p := range parts {
				if p.DataCoding != tt.coding || p.Text != tt.texts[i] || p.RegisteredDelivery != 1 ||
					p.Validity != "000002000000000R" || p.Dest != tt.msg.Dest {
					t.Fatalf("part %d: %+v", i+1, p)
				}
				if NormalizeID(p.MessageID) != ids[i] {
					t.Fatalf("part %d: id %q, Submit returned %q", i+1, p.MessageID, ids[i])
				}
				if len(tt.texts) == 1 {
					if p.UDH != nil || p.ESMClass&0x40 != 0 {
						t.Fatalf("single part with UDH: %+v", p)
					}
					continue
				}
				udh := []byte{0x05, 0x00, 0x03, byte(parts[0].Ref), byte(len(tt.texts)), byte(i + 1)}
				if !bytes.Equal(p.UDH, udh) || p.ESMClass&0x40 == 0 || p.Part != i+1 || p.Parts != len(tt.texts) {
					t.Fatalf("part %d: UDH % x esm %#x, want % x", i+1, p.UDH, p.ESMClass, udh)
				}
			}
			switch {
			case strings.HasPrefix(tt.msg.Source, "+"):
				if parts[0].SourceTON != tonIntl || parts[0].Source != tt.msg.Source[1:] {
					t.Fatalf("international source sent as TON %d %q", parts[0].SourceTON, parts[0].Source)
				}
			default:
				if parts[0].SourceTON != tonAlpha {
					t.Fatalf("alpha source sent with TON %d", parts[0].SourceTON)
				}
			}
		})
	}

	// Every part gets exactly one receipt, under the id Submit returned, although the simulator
	// writes ids in hex in some places and decimal (zero-padded) in others.
	testenv.Wait(t, "receipts", func() bool { return rc.len() >= len(allIDs) })
	byID := rc.byID()
	for _, id := range allIDs {
		if r := byID[id]; len(r) != 1 || r[0].Stat != StatDelivered || r[0].DoneAt.IsZero() {
			t.Fatalf("receipts for %s: %+v", id, r)
		}
	}
}

// A message sent with NoReceipt (an opt-out confirmation, tracked nowhere)
// asks for no delivery receipt in any part, so no receipt comes back that
// matches no message.
func TestSubmitNoReceipt(t *testing.T) {
	var got submits
	sim := MustOpenSim(t, SimOptions{DeliveredPercent: 100, OnSubmit: got.add})
	c := MustStartClient(t, sim, Options{Validity: 48 * time.Hour})
	for _, m := range []campaignd.OutMessage{
		{Source: "28776", Dest: "34600000001", Text: "Listo", NoReceipt: true},
		{Source: "28776", Dest: "34600000002", Text: strings.Repeat("b", 200), NoReceipt: true},
		{Source: "28776", Dest: "34600000003", Text: "tracked"},
	} {
		if _, err := c.Submit(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	parts := got.snapshot()
	if len(parts) != 4 {
		t.Fatalf("simulator got %d parts, want 4", len(parts))
	}
	for i, p := range parts {
		want := byte(0)
		if p.Dest == "34600000003" {
			want = 1
		}
		if p.RegisteredDelivery != want {
			t.Fatalf("part %d to %s: registered_delivery %d, want %d", i+1, p.Dest, p.RegisteredDelivery, want)
		}
	}
}

func TestReceiptIDsMatchWithoutTLV(t *testing.T) {
	// Where the scheme writes one number the same way everywhere, the receipt text alone gives the id
	// submit_sm_resp gave (case and leading zeros aside); the cross schemes give the other base.
	for _, scheme := range SimIDSchemes {
		for n := uint64(1); n <= 1200; n += 77 {
			resp, _, text := simIDs(scheme, n)
			r, ok := ParseReceipt("id:" + text + " sub:001 dlvrd:001 submit date:2501011200 done date:2501011201 stat:DELIVRD err:000 text:")
			same := r.MessageID == NormalizeID(resp)
			cross := scheme == SimIDHexDecimal || scheme == SimIDDecimalHex
			if !ok || same == (cross && n >= 10) {
				t.Fatalf("%s n=%d: resp %q text %q -> %q", scheme, n, resp, text, r.MessageID)
			}
		}
	}
}

func TestBindPair(t *testing.T) {
	var rc receipts
	sim := MustOpenSim(t, SimOptions{DeliveredPercent: 50, TrackDests: true})
	c := MustStartClient(t, sim, Options{Bind: BindPair, OnReceipt: rc.onReceipt})
	var ids []string
	for i := range 10 {
		got, err := c.Submit(context.Background(), campaignd.OutMessage{Source: "Shop", Dest: fmt.Sprint(34600000000 + i), Text: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got...)
	}
	testenv.Wait(t, "receipts", func() bool { return rc.len() >= len(ids) })
	st := sim.Stats()
	if st.Binds != 2 || st.Conns != 2 || len(st.PerDest) != 10 || st.PerDest["34600000003"] != 1 {
		t.Fatalf("binds %d conns %d per dest %v, want 2, 2 and 10 dests once each", st.Binds, st.Conns, st.PerDest)
	}
	delivered := 0
	for _, id := range ids {
		r := rc.byID()[id]
		if len(r) != 1 {
			t.Fatalf("id %s: %d receipts", id, len(r))
		}
		if r[0].Stat == StatDelivered {
			delivered++
		}
	}
	if delivered != 5 {
		t.Fatalf("%d of 10 delivered at 50%%", delivered)
	}
}

func TestMultipartFailureReturnsAcceptedIDs(t *testing.T) {
	var sim *Simulator
	sim = MustOpenSim(t, SimOptions{OnSubmit: func(x SimSubmit) {
		if x.Part == 2 {
			sim.SetMode(SimThrottle) // from part 3 on
		}
	}})
	c := MustStartClient(t, sim, Options{})
	ids, err := c.Submit(context.Background(), campaignd.OutMessage{Source: "Shop", Dest: "1", Text: strings.Repeat("m", 400)})
	var se *campaignd.SubmitError
	if len(ids) != 2 || !errors.As(err, &se) || !se.Temporary {
		t.Fatalf("ids %v err %v, want 2 ids and a throttling error", ids, err)
	}
}

func TestEnquireLinkKeepsIdleSessionUp(t *testing.T) {
	sim := MustOpenSim(t, SimOptions{})
	// Reads time out after 2×50ms+200ms: only enquire_link traffic keeps the session alive.
	c := MustStartClient(t, sim, Options{EnquireLink: 50 * time.Millisecond, ResponseTimeout: 200 * time.Millisecond})
	testenv.Wait(t, "enquire_links", func() bool { return sim.Stats().EnquireLinks >= 10 })
	if st := sim.Stats(); st.Binds != 1 || !c.Bound() {
		t.Fatalf("session dropped while idle: %+v", st)
	}
}

func TestThrottledIsTemporary(t *testing.T) {
	ev := newEvents()
	sim := MustOpenSim(t, SimOptions{})
	c := MustStartClient(t, sim, Options{Events: ev})
	sim.SetMode(SimThrottle)
	_, err := c.Submit(context.Background(), campaignd.OutMessage{Source: "Shop", Dest: "1", Text: "x"})
	var se *campaignd.SubmitError
	if !errors.As(err, &se) || se.Status != 0x58 || !se.Temporary {
		t.Fatalf("err = %v, want temporary SubmitError 0x58", err)
	}
	if ev.result(ResultThrottled) != 1 {
		t.Fatalf("events: %v", ev.results)
	}
	if temporary(0x0B) {
		t.Fatal("0x0B is not temporary")
	}
	sim.SetMode(SimNormal)
	if _, err := c.Submit(context.Background(), campaignd.OutMessage{Source: "Shop", Dest: "1", Text: "x"}); err != nil {
		t.Fatal(err)
	}
}

func TestSilentTimesOutAndRebinds(t *testing.T) {
	ev := newEvents()
	sim := MustOpenSim(t, SimOptions{})
	c := MustStartClient(t, sim, Options{ResponseTimeout: 200 * time.Millisecond, Events: ev})
	sim.SetMode(SimSilent)
	if _, err := c.Submit(context.Background(), campaignd.OutMessage{Source: "Shop", Dest: "1", Text: "x"}); !errors.Is(err, campaignd.ErrSubmitTimeout) {
		t.Fatalf("err = %v, want campaignd.ErrSubmitTimeout", err)
	}
	sim.SetMode(SimNormal)
	testenv.Wait(t, "rebind", func() bool { return sim.Stats().Binds == 2 && c.Bound() })
	if _, err := c.Submit(context.Background(), campaignd.OutMessage{Source: "Shop", Dest: "1", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if !slices.Equal(ev.bound, []bool{true, false, true}) || ev.results[ResultTimeout] != 1 {
		t.Fatalf("bound events %v results %v", ev.bound, ev.results)
	}
}

func TestDropReconnects(t *testing.T) {
	var boundCalls atomic.Int32
	sim := MustOpenSim(t, SimOptions{})
	c := MustStartClient(t, sim, Options{OnBound: func(bool) { boundCalls.Add(1) }})
	sim.SetMode(SimDrop)
	if _, err := c.Submit(context.Background(), campaignd.OutMessage{Source: "Shop", Dest: "1", Text: "x"}); !errors.Is(err, campaignd.ErrNotBound) {
		t.Fatalf("err = %v, want campaignd.ErrNotBound", err)
	}
	sim.SetMode(SimNormal)
	// Submit waits for the new session by itself.
	if _, err := c.Submit(context.Background(), campaignd.OutMessage{Source: "Shop", Dest: "1", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	if b := sim.Stats().Binds; b != 2 {
		t.Fatalf("binds = %d, want 2", b)
	}
	if n := boundCalls.Load(); n != 3 {
		t.Fatalf("OnBound called %d times, want 3", n)
	}
}

func TestRateCap(t *testing.T) {
	const tps = 200
	sim := MustOpenSim(t, SimOptions{})
	c := MustStartClient(t, sim, Options{TPS: tps, Window: 20})
	end := time.Now().Add(2 * time.Second)
	var mu sync.Mutex
	var first, last time.Time
	var ok int
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for time.Now().Before(end) {
				if _, err := c.Submit(context.Background(), campaignd.OutMessage{Source: "Shop", Dest: "1", Text: "x"}); err != nil {
					t.Error(err)
					return
				}
				now := time.Now()
				mu.Lock()
				if first.IsZero() {
					first = now
				}
				last, ok = now, ok+1
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	rate := float64(ok-1) / last.Sub(first).Seconds()
	if rate < tps*0.8 || rate > tps*1.2 {
		t.Fatalf("rate %.1f/s, want %d ±20%%; simulator %+v", rate, tps, sim.Stats())
	}
	t.Logf("rate %.1f/s for TPS %d", rate, tps)
}

func TestRateWaitPastDeadline(t *testing.T) {
	sim := MustOpenSim(t, SimOptions{})
	c := MustStartClient(t, sim, Options{TPS: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := c.Submit(ctx, campaignd.OutMessage{Source: "Shop", Dest: "1", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(ctx, campaignd.OutMessage{Source: "Shop", Dest: "1", Text: "x"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
}

func TestWindowNeverExceeded(t *testing.T) {
	const window = 4
	ev := newEvents()
	sim := MustOpenSim(t, SimOptions{ResponseDelay: 5 * time.Millisecond})
	c := MustStartClient(t, sim, Options{Window: window, Events: ev})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for range 10 {
				if _, err := c.Submit(context.Background(), campaignd.OutMessage{Source: "Shop", Dest: fmt.Sprint(i), Text: strings.Repeat("w", 200)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	st := sim.Stats()
	if st.Submits != 16*10*2 {
		t.Fatalf("submits %d", st.Submits)
	}
	if st.MaxOutstanding > window || st.MaxOutstanding < 2 {
		t.Fatalf("simulator saw %d outstanding, window %d", st.MaxOutstanding, window)
	}
	if ev.maxWindow != window {
		t.Fatalf("client window peaked at %d, want %d", ev.maxWindow, window)
	}
}

func TestCancelReturnsPromptly(t *testing.T) {
	sim := MustOpenSim(t, SimOptions{})
	c := MustStartClient(t, sim, Options{Window: 1, ResponseTimeout: time.Minute})
	sim.SetMode(SimSilent)

	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { // sent, waits for a response that never comes
		_, err := c.Submit(ctx, campaignd.OutMessage{Source: "Shop", Dest: "1", Text: "x"})
		errs <- err
	}()
	testenv.Wait(t, "first submit", func() bool { return sim.Stats().Submits == 1 })
	go func() { // waits for the only window slot
		_, err := c.Submit(ctx, campaignd.OutMessage{Source: "Shop", Dest: "2", Text: "x"})
		errs <- err
	}()
	cancel()
	start := time.Now()
	for range 2 {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("cancel took %v", d)
	}
	if n := sim.Stats().Submits; n != 1 {
		t.Fatalf("%d submits after cancel, want 1", n)
	}
	// The unanswered submit still holds its slot: the window counts what is on the wire.
	if c.inUse() != 1 {
		t.Fatalf("window in use %d, want 1", c.inUse())
	}
}

func TestReceiptErrorIsRedelivered(t *testing.T) {
	var failed atomic.Int32
	rc := receipts{fail: func(campaignd.Receipt) error {
		if failed.Add(1) == 1 {
			return errors.New("disk full")
		}
		return nil
	}}
	sim := MustOpenSim(t, SimOptions{DeliveredPercent: 100})
	c := MustStartClient(t, sim, Options{OnReceipt: rc.onReceipt})
	ids, err := c.Submit(context.Background(), campaignd.OutMessage{Source: "Shop", Dest: "1", Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Wait(t, "redelivered receipt", func() bool { return rc.len() == 1 })
	if got := rc.byID()[ids[0]]; len(got) != 1 {
		t.Fatalf("receipts %+v", got)
	}
	testenv.Wait(t, "ack", func() bool { return sim.Stats().ReceiptsAcked == 1 })
	if st := sim.Stats(); st.ReceiptsNacked != 1 || st.ReceiptsSent != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestReceiptsFirstDuplicatesAndUnmatched(t *testing.T) {
	var rc receipts
	sim := MustOpenSim(t, SimOptions{DeliveredPercent: 0})
	c := MustStartClient(t, sim, Options{OnReceipt: rc.onReceipt})
	sim.SetReceiptsFirst(true)
	sim.SetDuplicateReceipts(true)
	ids, err := c.Submit(context.Background(), campaignd.OutMessage{Source: "Shop", Dest: "1", Text: strings.Repeat("d", 300)})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Wait(t, "duplicated receipts", func() bool { return rc.len() == 2*len(ids) })
	for _, id := range ids {
		if r := rc.byID()[id]; len(r) != 2 || r[0].Stat != StatUndelivered {
			t.Fatalf("receipts for %s: %+v", id, r)
		}
	}
	sim.SetDuplicateReceipts(false)
	if err := sim.SendReceipt("00FFEE", StatExpired); err != nil {
		t.Fatal(err)
	}
	testenv.Wait(t, "unmatched receipt", func() bool { return len(rc.byID()["ffee"]) == 1 })
	if r := rc.byID()["ffee"][0]; r.Stat != StatExpired {
		t.Fatalf("receipt %+v", r)
	}
}

func TestReceiptsWaitForReceiverBind(t *testing.T) {
	var rc receipts
	sim := MustOpenSim(t, SimOptions{})
	if err := sim.SendReceipt("42", StatDelivered); err != nil {
		t.Fatal(err)
	}
	MustStartClient(t, sim, Options{OnReceipt: rc.onReceipt})
	testenv.Wait(t, "kept receipt", func() bool { return rc.len() == 1 })
}

func TestBindRejected(t *testing.T) {
	sim := MustOpenSim(t, SimOptions{SystemID: "good", Password: "secret"})
	c := New(Options{Addr: sim.Addr(), SystemID: "good", Password: "wrong"})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	c.Start(context.Background())
	defer func() { _ = c.Close(context.Background()) }()
	if _, err := c.Submit(ctx, campaignd.OutMessage{Source: "Shop", Dest: "1", Text: "x"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if sim.Stats().Binds != 0 || c.Bound() {
		t.Fatal("bound with a wrong password")
	}
}

func TestLocalRefusals(t *testing.T) {
	c := New(Options{})
	tests := []struct {
		name   string
		msg    campaignd.OutMessage
		status uint32
	}{
		{"too many parts", campaignd.OutMessage{Source: "1", Dest: "2", Text: strings.Repeat("x", 153*256)}, 0x01},
		{"source too long", campaignd.OutMessage{Source: strings.Repeat("1", 30), Dest: "2", Text: "x"}, 0x0A},
		{"no destination", campaignd.OutMessage{Source: "1", Text: "x"}, 0x0B},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Submit(context.Background(), tt.msg)
			var se *campaignd.SubmitError
			if !errors.As(err, &se) || se.Status != tt.status || se.Temporary {
				t.Fatalf("err = %v, want status %#x", err, tt.status)
			}
		})
	}
}

func BenchmarkSubmit(b *testing.B) {
	var receipts atomic.Int64
	sim := MustOpenSim(b, SimOptions{DeliveredPercent: 90})
	c := MustStartClient(b, sim, Options{Window: 200, OnReceipt: func(campaignd.Receipt) error {
		receipts.Add(1)
		return nil
	}})
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Submit(context.Background(), campaignd.OutMessage{Source: "Shop", Dest: "34600000000", Text: "benchmark message"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "submits/s")
	b.ReportMetric(float64(receipts.Load())/b.Elapsed().Seconds(), "receipts/s")
}

// BenchmarkRateCap measures the achieved rate against a TPS cap over SMPP_RATE_SECONDS (default 5)
// seconds, counted between the first and the last accepted submit; run it with -benchtime=1x.
func BenchmarkRateCap(b *testing.B) {
	const tps = 500
	seconds := 5
	if v := os.Getenv("SMPP_RATE_SECONDS"); v != "" {
		_, _ = fmt.Sscan(v, &seconds)
	}
	sim := MustOpenSim(b, SimOptions{DeliveredPercent: 100, ReceiptDelay: time.Millisecond})
	c := MustStartClient(b, sim, Options{TPS: tps, Window: 50, OnReceipt: func(campaignd.Receipt) error { return nil }})
	for range b.N {
		end := time.Now().Add(time.Duration(seconds) * time.Second)
		var mu sync.Mutex
		var first, last time.Time
		var ok int
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				for time.Now().Before(end) {
					if _, err := c.Submit(context.Background(), campaignd.OutMessage{Source: "Shop", Dest: "1", Text: "x"}); err != nil {
						b.Errorf("submit: %v", err)
						return
					}
					now := time.Now()
					mu.Lock()
					if first.IsZero() {
						first = now
					}
					last = now
					ok++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		rate := float64(ok-1) / last.Sub(first).Seconds()
		b.ReportMetric(rate, "submits/s")
		b.ReportMetric(100*(rate-tps)/tps, "error_%")
	}
}

// A message carrying its own validity (its broadcast's) sends it in every
// part; one without sends the client's default.
func TestSubmitValidityPerMessage(t *testing.T) {
	var got submits
	sim := MustOpenSim(t, SimOptions{DeliveredPercent: 100, OnSubmit: got.add})
	c := MustStartClient(t, sim, Options{Validity: 48 * time.Hour})
	for _, m := range []campaignd.OutMessage{
		{Source: "28776", Dest: "34600000001", Text: "dos horas", Validity: 2 * time.Hour},
		{Source: "28776", Dest: "34600000002", Text: strings.Repeat("b", 200), Validity: 90 * time.Minute},
		{Source: "28776", Dest: "34600000003", Text: "default"},
	} {
		if _, err := c.Submit(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{"34600000001": "000000020000000R", "34600000002": "000000013000000R", "34600000003": "000002000000000R"}
	parts := got.snapshot()
	if len(parts) != 4 {
		t.Fatalf("simulator got %d parts, want 4", len(parts))
	}
	for i, p := range parts {
		if p.Validity != want[p.Dest] {
			t.Fatalf("part %d to %s: validity %q, want %q", i+1, p.Dest, p.Validity, want[p.Dest])
		}
	}
}
