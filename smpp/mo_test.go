package smpp

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"campaignd/internal/testenv"
)

// mos records what OnMO saw.
type mos struct {
	mu   sync.Mutex
	all  []MO
	fail int // the first fail calls return an error
}

func (m *mos) onMO(x MO) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail > 0 {
		m.fail--
		return errors.New("store down")
	}
	m.all = append(m.all, x)
	return nil
}

func (m *mos) snapshot() []MO {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.all)
}

func TestMOEncodings(t *testing.T) {
	for _, bind := range []string{BindTransceiver, BindPair} {
		t.Run(bind, func(t *testing.T) {
			sim := MustOpenSim(t, SimOptions{})
			got := &mos{}
			rs := &receipts{}
			MustStartClient(t, sim, Options{Bind: bind, OnMO: got.onMO, OnReceipt: rs.onReceipt})
			cases := []SimMO{
				{From: "5215512345678", To: "28776", Text: "BAJA"},
				{From: "5215512345679", To: "28776", Text: "baja."},
				{From: "5215512345680", To: "28776", Text: "Stop por favor", DataCoding: codingUCS2},
				{From: "5215512345681", To: "28776", Text: "no más", DataCoding: codingUCS2},
				{From: "5215512345682", To: "28776", Text: "No más {[€]}"},                        // GSM-7 with extension characters
				{From: "5215512345683", To: "28776", Text: "ALTO ya 😀"},                           // UCS-2 with a surrogate pair
				{From: "5215512345684", To: "28776", Text: "cancelar por payload", Payload: true}, // message_payload TLV
				{From: "5215512345685", To: "28776", Text: "Ésta es UCS-2 por payload", Payload: true},
				{From: "28776", To: "28776", Text: "national", FromTON: 2},
			}
			for _, c := range cases {
				if err := sim.SendMO(c); err != nil {
					t.Fatal(err)
				}
			}
			testenv.Wait(t, "every MO", func() bool { return len(got.snapshot()) == len(cases) })
			byFrom := map[string]MO{}
			for _, m := range got.snapshot() {
				byFrom[m.From] = m
			}
			for _, c := range cases {
				from := c.From
				m, ok := byFrom[from]
				if !ok {
					t.Errorf("no MO from %s (got %v)", from, got.snapshot())
					continue
				}
				if m.Text != c.Text || m.To != c.To {
					t.Errorf("MO from %s = %q to %q, want %q to %q", from, m.Text, m.To, c.Text, c.To)
				}
				wantCoding := c.DataCoding
				if !isGSM7(c.Text) {
					wantCoding = codingUCS2
				}
				if m.DataCoding != wantCoding {
					t.Errorf("MO %q: data_coding %d, want %d", c.Text, m.DataCoding, wantCoding)
				}
			}
			if rs.len() != 0 {
				t.Errorf("MOs reached OnReceipt: %d", rs.len())
			}
			testenv.Wait(t, "acknowledged", func() bool { return sim.Stats().ReceiptsAcked == int64(len(cases)) })
		})
	}
}

// An MO whose handler fails is answered with an error status and
// delivered again; it is acknowledged only once stored.
func TestMOErrorIsRedelivered(t *testing.T) {
	sim := MustOpenSim(t, SimOptions{})
	got := &mos{fail: 2}
	MustStartClient(t, sim, Options{OnMO: got.onMO})
	if err := sim.SendMO(SimMO{From: "5215500000001", To: "28776", Text: "BAJA"}); err != nil {
		t.Fatal(err)
	}
	testenv.Wait(t, "stored after redelivery", func() bool { return len(got.snapshot()) == 1 })
	st := sim.Stats()
	if st.ReceiptsNacked != 2 {
		t.Errorf("nacked %d, want 2", st.ReceiptsNacked)
	}
	testenv.Wait(t, "acknowledged", func() bool { return sim.Stats().ReceiptsAcked == 1 })
}

// An MO sent while no receiver is bound waits for the bind.
func TestMOWaitsForBind(t *testing.T) {
	sim := MustOpenSim(t, SimOptions{})
	if err := sim.SendMO(SimMO{From: "5215500000002", To: "28776", Text: "STOP"}); err != nil {
		t.Fatal(err)
	}
	got := &mos{}
	MustStartClient(t, sim, Options{OnMO: got.onMO})
	testenv.Wait(t, "MO after bind", func() bool { return len(got.snapshot()) == 1 })
}

func TestDecodeText(t *testing.T) {
	for _, tc := range []struct {
		name   string
		coding byte
		in     []byte
		want   string
	}{
		{"gsm7", codingGSM7, encodeGSM7("BAJA @£"), "BAJA @£"},
		{"ucs2", codingUCS2, []byte{0, 'n', 0, 'o', 0, ' ', 0, 'm', 0, 0xE1, 0, 's'}, "no más"},
		{"ascii", codingASCII, []byte("STOP"), "STOP"},
		{"latin1", codingLatin1, []byte{'n', 'o', ' ', 'm', 0xE1, 's'}, "no más"},
		{"unknown utf8", 0xF4, []byte("baja"), "baja"},
		{"unknown binary", 0x04, []byte{'m', 0xE1, 's'}, "más"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DecodeText(tc.coding, tc.in); got != tc.want {
				t.Errorf("DecodeText = %q, want %q", got, tc.want)
			}
		})
	}
}
