package smpp

import (
	"errors"
	"time"
	"unicode/utf16"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"
)

// SimMO is a reply the simulator sends as if a handset had answered: a
// deliver_sm without the receipt bit.
type SimMO struct {
	From, To, Text string
	// DataCoding is 0 (GSM-7, unpacked; the default) or 8 (UCS-2). A text
	// that does not fit GSM-7 is sent as UCS-2 whatever is asked.
	DataCoding byte
	// Payload carries the text in a message_payload TLV with an empty
	// short message.
	Payload bool
	// FromTON is the source address TON (default 1, international).
	FromTON byte
}

// SendMO delivers m to a receiver now, or to the first one that binds; it
// is delivered again until a deliver_sm_resp with ESME_ROK acknowledges it.
func (s *Simulator) SendMO(m SimMO) error {
	select {
	case <-s.closed:
		return errors.New("smpp: simulator closed")
	default:
	}
	if m.DataCoding != codingUCS2 && !isGSM7(m.Text) {
		m.DataCoding = codingUCS2
	}
	if m.FromTON == 0 {
		m.FromTON = tonIntl
	}
	s.deliver(&simReceipt{mo: &m, submitted: time.Now()})
	return nil
}

// sendMO writes an MO like sendReceipt writes a receipt.
func (c *simConn) sendMO(r *simReceipt) bool {
	m := r.mo
	d := pdu.NewDeliverSM().(*pdu.DeliverSM)
	d.EsmClass = 0
	d.SourceAddr.SetTon(m.FromTON)
	d.SourceAddr.SetNpi(npiISDN)
	_ = d.SourceAddr.SetAddress(m.From)
	_ = d.DestAddr.SetAddress(m.To)
	var enc data.Encoding = data.GSM7BIT
	payload := encodeGSM7(m.Text)
	if m.DataCoding == codingUCS2 {
		enc, payload = data.UCS2, unitsToBytes(utf16.Encode([]rune(m.Text)))
	}
	if m.Payload {
		_ = d.Message.SetMessageDataWithEncoding(nil, enc)
		d.RegisterOptionalParam(pdu.Field{Tag: pdu.TagMessagePayload, Data: payload})
	} else {
		_ = d.Message.SetMessageDataWithEncoding(payload, enc)
	}
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		return false
	}
	c.awaiting[d.SequenceNumber] = r
	c.mu.Unlock()
	c.send(d) // not written: c closed after r entered awaiting, and close() delivers r elsewhere
	return true
}
