package smpp

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"unicode/utf16"

	"campaignd/internal/testenv"
)

// sendMO asks smsc.js to deliver an MO.
func (p *nodePeer) sendMO(t *testing.T, from, to string, coding byte, payload []byte, inTLV bool) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"cmd": "mo", "from": from, "to": to, "data_coding": coding,
		"hex": hex.EncodeToString(payload), "payload": inTLV})
	p.mu.Lock()
	_, err := fmt.Fprintf(p.stdin, "%s\n", b)
	p.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
}

// TestInteropNodeSMPPMO: replies delivered by node-smpp, an SMPP stack we
// did not write, in GSM-7 and UCS-2, in short_message and message_payload,
// reach OnMO decoded and are acknowledged only when OnMO succeeds.
func TestInteropNodeSMPPMO(t *testing.T) {
	node := lookNodeSMSC(t)
	for _, bind := range []string{BindTransceiver, BindPair} {
		t.Run(bind, func(t *testing.T) {
			p := startNodePeer(t, node, 0)
			got := &mos{fail: 1}
			c := startNodeClient(t, p, Options{SystemID: nodeSMSCSystemID, Password: nodeSMSCPassword, Bind: bind, OnMO: got.onMO})
			testenv.Wait(t, "bound", c.Bound)
			ucs2 := func(s string) []byte { return unitsToBytes(utf16.Encode([]rune(s))) }
			cases := []struct {
				from, text string
				coding     byte
				body       []byte
				tlv        bool
			}{
				{"525500000001", "BAJA", codingGSM7, encodeGSM7("BAJA"), false},
				{"525500000002", "baja.", codingGSM7, encodeGSM7("baja."), false},
				{"525500000003", "Stop por favor", codingUCS2, ucs2("Stop por favor"), false},
				{"525500000004", "no más", codingUCS2, ucs2("no más"), false},
				{"525500000005", "NO MAS", codingGSM7, encodeGSM7("NO MAS"), true},
				{"525500000006", "Cancelar ¿sí?", codingUCS2, ucs2("Cancelar ¿sí?"), true},
				{"525500000007", "stop", codingASCII, []byte("stop"), false},
			}
			for _, tc := range cases {
				p.sendMO(t, tc.from, "28776", tc.coding, tc.body, tc.tlv)
			}
			testenv.Wait(t, "every MO", func() bool { return len(got.snapshot()) == len(cases) })
			byFrom := map[string]MO{}
			for _, m := range got.snapshot() {
				byFrom[m.From] = m
			}
			for _, tc := range cases {
				m := byFrom[tc.from]
				if m.Text != tc.text || m.To != "28776" || m.DataCoding != tc.coding || m.FromTON != tonIntl {
					t.Errorf("MO from %s = %+v, want %q in coding %d", tc.from, m, tc.text, tc.coding)
				}
			}
			// The refused first delivery was answered with an error and delivered again.
			testenv.Wait(t, "responses", func() bool { return len(p.all("mo_resp")) == len(cases)+1 })
			refused := 0
			for _, e := range p.all("mo_resp") {
				if e.Status != 0 {
					refused++
				}
			}
			if refused != 1 {
				t.Errorf("%d MOs refused, want 1", refused)
			}
		})
	}
}
