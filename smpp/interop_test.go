package smpp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
)

// The interoperability test runs the client against an SMSC built on node-smpp (the npm package
// "smpp", farhadi/node-smpp), an SMPP implementation this project did not write: see
// testdata/nodesmsc/smsc.js for what that SMSC does and the quirks it works around.

const (
	nodeSMSCDir      = "testdata/nodesmsc"
	nodeSMSCSystemID = "campaignd" // what smsc.js accepts
	nodeSMSCPassword = "secret"
)

// peerEvent is one JSON line from smsc.js.
type peerEvent struct {
	Event              string   `json:"event"`
	Port               int      `json:"port"`
	Session            int      `json:"session"`
	Kind               string   `json:"kind"` // bind: transceiver, transmitter, receiver
	Bind               string   `json:"bind"` // submit, receipt_sent: the session's bind
	Status             uint32   `json:"status"`
	ID                 string   `json:"id"`
	Source             string   `json:"source"`
	SourceTON          int      `json:"source_ton"`
	SourceNPI          int      `json:"source_npi"`
	Dest               string   `json:"dest"`
	ESMClass           int      `json:"esm_class"`
	DataCoding         int      `json:"data_coding"`
	RegisteredDelivery int      `json:"registered_delivery"`
	UDH                []string `json:"udh"` // information elements in hex, e.g. "0003rr0302"
	Text               string   `json:"text"`
	Error              string   `json:"error"`
	line               string
}

// SystemID is the system_id of a bind event.
func (e peerEvent) SystemID() string {
	var v struct {
		SystemID string `json:"system_id"`
	}
	_ = json.Unmarshal([]byte(e.line), &v)
	return v.SystemID
}

// lockedBuffer collects the peer's stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// nodePeer is a running smsc.js.
type nodePeer struct {
	addr  string
	stdin interface{ Write([]byte) (int, error) } // commands to smsc.js (MOs: mo_interop_test.go)

	mu     sync.Mutex
	events []peerEvent
}

func (p *nodePeer) add(e peerEvent) {
	p.mu.Lock()
	p.events = append(p.events, e)
	p.mu.Unlock()
}

// all returns the events named name (every event when name is "").
func (p *nodePeer) all(name string) []peerEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []peerEvent
	for _, e := range p.events {
		if name == "" || e.Event == name {
			out = append(out, e)
		}
	}
	return out
}

func (p *nodePeer) count(name string, session int) int {
	n := 0
	for _, e := range p.all(name) {
		if session == 0 || e.Session == session {
			n++
		}
	}
	return n
}

// lookNodeSMSC returns the path of node, skipping the test (failing it in CI) when node or node-smpp is
// not installed.
func lookNodeSMSC(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Missing(t, "node not installed (needed for the node-smpp interoperability test)")
	}
	if _, err := os.Stat(filepath.Join(nodeSMSCDir, "node_modules", "smpp", "package.json")); err != nil {
		testenv.Missing(t, "node-smpp not installed: run: npm ci --prefix smpp/testdata/nodesmsc")
	}
	return node
}

// startNodePeer runs `node smsc.js 0 PING_MS` and waits for the port it listens on; with ping > 0 the
// peer sends its own enquire_link every ping. The process is killed at the end of the test, and exits
// by itself if the test binary dies (its stdin closes).
func startNodePeer(t *testing.T, node string, ping time.Duration) *nodePeer {
	t.Helper()
	cmd := exec.Command(node, "smsc.js", "0", strconv.FormatInt(ping.Milliseconds(), 10))
	cmd.Dir = nodeSMSCDir
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &nodePeer{stdin: stdin}
	ports := make(chan int, 1)
	readDone := make(chan struct{})
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		<-readDone
		_ = cmd.Wait()
		if t.Failed() {
			for _, e := range p.all("") {
				t.Logf("smsc.js: %s", e.line)
			}
			if s := stderr.String(); s != "" {
				t.Logf("smsc.js stderr:\n%s", s)
			}
		}
	})
	go func() {
		defer close(readDone)
		defer close(ports)
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			e := peerEvent{line: line}
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				e = peerEvent{Event: "unparsed", Error: err.Error(), line: line}
			}
			p.add(e)
			if e.Event == "listening" && !sent {
				ports <- e.Port
				sent = true
			}
		}
	}()

	select {
	case port, ok := <-ports:
		if !ok || port == 0 {
			t.Fatalf("smsc.js exited without listening; stderr:\n%s", stderr.String())
		}
		p.addr = "127.0.0.1:" + strconv.Itoa(port)
	case <-time.After(15 * time.Second):
		t.Fatalf("smsc.js did not report its port; stderr:\n%s", stderr.String())
	}
	return p
}

// boundLog records OnBound calls.
type boundLog struct {
	mu  sync.Mutex
	all []bool
}

func (b *boundLog) add(v bool) {
	b.mu.Lock()
	b.all = append(b.all, v)
	b.mu.Unlock()
}

func (b *boundLog) snapshot() []bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.all)
}

// startNodeClient starts a client against the peer and closes it at the end of the test (before the
// peer is killed: cleanups run last-in first-out).
func startNodeClient(t *testing.T, p *nodePeer, o Options) *Client {
	t.Helper()
	o.Addr = p.addr
	if os.Getenv("SMPP_DEBUG") != "" && o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c := New(o)
	c.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c
}

// interopText is a 400-character GSM-7 text (3 parts) whose parts can be told apart.
func interopText() string {
	var b strings.Builder
	for i := 0; b.Len() < 400; i++ {
		fmt.Fprintf(&b, "(%03d) ", i)
	}
	return b.String()[:400]
}

// TestInteropNodeSMPP runs the client against node-smpp's server, bound as a transceiver and as a
// transmitter + receiver pair: GSM-7, UCS-2 and 3-part GSM-7 messages and a burst through the window
// must reach the peer with the right data_coding, UDH, addresses and text as node-smpp decodes them;
// every id Submit returns must come back in exactly one receipt; enquire_link must keep an idle session
// up; the client must answer the peer's enquire_link; a refused bind must leave it unbound.
func TestInteropNodeSMPP(t *testing.T) {
	node := lookNodeSMSC(t)
	for _, bind := range []string{BindTransceiver, BindPair} {
		t.Run(bind, func(t *testing.T) { testInteropNode(t, node, bind) })
	}
	t.Run("peer enquire_link", func(t *testing.T) {
		// The client answers the SMSC's enquire_link (every 100 ms here) and keeps the session.
		p := startNodePeer(t, node, 100*time.Millisecond)
		var bl boundLog
		c := startNodeClient(t, p, Options{SystemID: nodeSMSCSystemID, Password: nodeSMSCPassword, OnBound: bl.add})
		testenv.Wait(t, "bound", c.Bound)
		testenv.Wait(t, "5 enquire_link_resp", func() bool { return p.count("enquire_link_resp", 0) >= 5 })
		for _, e := range p.all("enquire_link_resp") {
			if e.Status != 0 {
				t.Fatalf("enquire_link_resp: %s", e.line)
			}
		}
		if !c.Bound() || !slices.Equal(bl.snapshot(), []bool{true}) || len(p.all("connect")) != 1 {
			t.Fatalf("session not kept: Bound=%v OnBound=%v connections=%d", c.Bound(), bl.snapshot(), len(p.all("connect")))
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		p := startNodePeer(t, node, 0)
		var bl boundLog
		c := startNodeClient(t, p, Options{SystemID: nodeSMSCSystemID, Password: "wrong",
			ResponseTimeout: 2 * time.Second, OnBound: bl.add})
		testenv.Wait(t, "refused bind", func() bool { return p.count("bind", 0) > 0 })
		time.Sleep(100 * time.Millisecond)
		b := p.all("bind")[0]
		if b.Status != 0x0E || b.Kind != "transceiver" || b.SystemID() != nodeSMSCSystemID {
			t.Fatalf("bind seen by the peer: %s", b.line)
		}
		if c.Bound() || len(bl.snapshot()) != 0 {
			t.Fatalf("bound after ESME_RINVPASWD: Bound=%v OnBound=%v", c.Bound(), bl.snapshot())
		}
	})
}

func testInteropNode(t *testing.T, node, bind string) {
	p := startNodePeer(t, node, 0) // the peer sends nothing unasked
	var rc receipts
	var bl boundLog
	c := startNodeClient(t, p, Options{
		SystemID: nodeSMSCSystemID, Password: nodeSMSCPassword, Bind: bind,
		// Reads time out after 2×EnquireLink+ResponseTimeout = 1.4 s: once the traffic stops, only the
		// peer's enquire_link_resp keep the session up.
		Window: 4, ResponseTimeout: time.Second, EnquireLink: 200 * time.Millisecond,
		OnReceipt: rc.onReceipt, OnBound: bl.add,
	})
	testenv.Wait(t, "bound", c.Bound)

	wantKinds := []string{"transceiver"}
	if bind == BindPair {
		wantKinds = []string{"receiver", "transmitter"}
	}
	// The client is bound once it has the bind_resp; the peer's line about
	// the bind is read from its stdout a moment later (once, under -race on
	// a loaded machine, after this point).
	testenv.Wait(t, "the peer to report the binds", func() bool { return len(p.all("bind")) >= len(wantKinds) })
	binds := p.all("bind")
	var kinds []string
	sessions := map[int]string{} // peer session → bind kind
	for _, b := range binds {
		if b.Status != 0 || b.SystemID() != nodeSMSCSystemID {
			t.Fatalf("bind seen by the peer: %s", b.line)
		}
		kinds = append(kinds, b.Kind)
		sessions[b.Session] = b.Kind
	}
	slices.Sort(kinds)
	if !slices.Equal(kinds, wantKinds) {
		t.Fatalf("peer saw binds %v, want %v", kinds, wantKinds)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	long := interopText()
	tests := []struct {
		name     string
		msg      campaignd.OutMessage
		coding   int
		srcTON   int
		srcNPI   int
		wantSrc  string
		texts    []string
		multiple bool
	}{
		{"single GSM-7", campaignd.OutMessage{Source: "Shop", Dest: "34600000001", Text: "Hola, ¿qué tal? ñ ü €"},
			0x00, 5, 0, "Shop", []string{"Hola, ¿qué tal? ñ ü €"}, false},
		{"single UCS-2", campaignd.OutMessage{Source: "+34911111111", Dest: "34600000002", Text: "Dirección: calle Málaga 😀"},
			0x08, 1, 1, "34911111111", []string{"Dirección: calle Málaga 😀"}, false},
		{"multipart GSM-7", campaignd.OutMessage{Source: "Shop", Dest: "34600000003", Text: long},
			0x00, 5, 0, "Shop", []string{long[:153], long[153:306], long[306:]}, true},
	}
	var allIDs []string
	for _, tt := range tests {
		before := len(p.all("submit"))
		ids, err := c.Submit(ctx, tt.msg)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if len(ids) != len(tt.texts) {
			t.Fatalf("%s: %d ids, want %d", tt.name, len(ids), len(tt.texts))
		}
		allIDs = append(allIDs, ids...)
		testenv.Wait(t, tt.name+" at the peer", func() bool { return len(p.all("submit")) >= before+len(tt.texts) })
		parts := p.all("submit")[before:]
		if len(parts) != len(tt.texts) {
			t.Fatalf("%s: peer got %d submits, want %d", tt.name, len(parts), len(tt.texts))
		}
		var ref string
		for i, e := range parts {
			if e.DataCoding != tt.coding || e.Text != tt.texts[i] || e.Dest != tt.msg.Dest ||
				e.Source != tt.wantSrc || e.SourceTON != tt.srcTON || e.SourceNPI != tt.srcNPI ||
				e.RegisteredDelivery != 1 {
				t.Fatalf("%s: part %d as the peer decoded it: %s", tt.name, i+1, e.line)
			}
			if bind == BindPair && e.Bind != "transmitter" || bind == BindTransceiver && e.Bind != "transceiver" {
				t.Fatalf("%s: submitted on a %s session", tt.name, e.Bind)
			}
			if got := NormalizeID(e.ID); got != ids[i] {
				t.Fatalf("%s: part %d: peer id %q normalises to %q, Submit returned %q", tt.name, i+1, e.ID, got, ids[i])
			}
			if !tt.multiple {
				if e.UDH != nil || e.ESMClass&0x40 != 0 {
					t.Fatalf("%s: single part with a UDH: %s", tt.name, e.line)
				}
				continue
			}
			// One concatenation IE: IEI 00, length 03, reference, total, sequence.
			if e.ESMClass&0x40 == 0 || len(e.UDH) != 1 || len(e.UDH[0]) != 10 || e.UDH[0][:4] != "0003" ||
				e.UDH[0][6:] != fmt.Sprintf("%02x%02x", len(tt.texts), i+1) {
				t.Fatalf("%s: part %d UDH: %s", tt.name, i+1, e.line)
			}
			if i == 0 {
				ref = e.UDH[0][4:6]
			} else if e.UDH[0][4:6] != ref {
				t.Fatalf("%s: part %d has reference %s, part 1 %s", tt.name, i+1, e.UDH[0][4:6], ref)
			}
		}
		if tt.multiple && strings.Join(tt.texts, "") != tt.msg.Text {
			t.Fatal("bad test: parts do not make up the text")
		}
	}

	// A burst through the window: 12 concurrent submits, 4 in flight at most.
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i := range 12 {
		wg.Go(func() {
			ids, err := c.Submit(ctx, campaignd.OutMessage{Source: "Shop", Dest: fmt.Sprintf("346100000%02d", i), Text: fmt.Sprintf("burst %d", i)})
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			allIDs = append(allIDs, ids...)
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("burst: %v", err)
	}

	// Every part gets exactly one receipt, with the id Submit returned for it.
	testenv.Wait(t, "receipts", func() bool { return rc.len() >= len(allIDs) })
	testenv.Wait(t, "deliver_sm_resp at the peer", func() bool { return p.count("receipt_resp", 0) >= len(allIDs) })
	time.Sleep(100 * time.Millisecond) // room for a duplicate to show up
	byID := rc.byID()
	if rc.len() != len(allIDs) || len(byID) != len(allIDs) {
		t.Fatalf("%d receipts for %d distinct ids, want one per id (%d)", rc.len(), len(byID), len(allIDs))
	}
	for _, id := range allIDs {
		rs := byID[id]
		if len(rs) != 1 {
			t.Fatalf("id %s: %d receipts; receipts by id: %v", id, len(rs), byID)
		}
		r := rs[0]
		if r.Stat != StatDelivered || r.Err != "000" || r.DoneAt.IsZero() {
			t.Fatalf("receipt %+v", r)
		}
		// The text's id is decimal, the TLV's hex: both name the same message
		// once the base is known (smpp.message_id_format says which; ids are
		// kept as given, never converted here).
		n, err := strconv.ParseUint(id, 16, 64)
		if err != nil {
			t.Fatalf("TLV id %q is not hex: %v", id, err)
		}
		if fromText, ok := ParseReceipt(r.Raw); !ok || fromText.MessageID != strconv.FormatUint(n, 10) {
			t.Fatalf("receipt text %q gives id %q, TLV gave %q (decimal %d)", r.Raw, fromText.MessageID, id, n)
		}
	}
	for _, e := range p.all("receipt_resp") {
		if e.Status != 0 {
			t.Fatalf("deliver_sm_resp: %s", e.line)
		}
	}
	for _, e := range p.all("receipt_sent") {
		if want := wantKinds[0]; e.Bind != want { // receiver for a pair, transceiver otherwise
			t.Fatalf("receipt sent on a %s session, want %s", e.Bind, want)
		}
	}

	// enquire_link: with nothing else on the wire for 2.5 s, longer than the 1.4 s read timeout, the
	// client's enquire_link every 200 ms and the peer's responses keep every session up.
	el := map[int]int{}
	for s := range sessions {
		el[s] = p.count("enquire_link", s)
	}
	time.Sleep(2500 * time.Millisecond)
	if !c.Bound() {
		t.Fatal("not bound after 2.5 s of enquire_link")
	}
	if got := bl.snapshot(); !slices.Equal(got, []bool{true}) {
		t.Fatalf("OnBound calls %v, want [true]: the session was lost", got)
	}
	if n := len(p.all("connect")); n != len(wantKinds) {
		t.Fatalf("%d connections to the peer, want %d: the client reconnected", n, len(wantKinds))
	}
	for s, kind := range sessions {
		if n := p.count("enquire_link", s) - el[s]; n < 5 {
			t.Errorf("%s session: %d enquire_link from the client in 2.5 s, want ≥ 5", kind, n)
		}
	}
	for _, name := range []string{"unsupported", "error", "unparsed", "fatal"} {
		for _, e := range p.all(name) {
			t.Errorf("peer: %s", e.line)
		}
	}
}
