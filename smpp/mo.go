package smpp

import (
	"log/slog"
	"unicode/utf8"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"
)

// esmTypeMask selects the message type bits (2–5) of esm_class: 0 is a
// plain message from a handset (an MO); receipts, SME acknowledgements and
// intermediate notifications set one of them.
const esmTypeMask = 0x3C

// Data codings an MO may arrive in, besides GSM-7 (0) and UCS-2 (8).
const (
	codingASCII  byte = 0x01
	codingLatin1 byte = 0x03
)

// MO is a mobile-originated message: a handset's reply (deliver_sm without
// the receipt bit). Text is UTF-8, decoded from the data_coding; a
// message_payload TLV is read when the short message is empty. Parts of a
// concatenated reply arrive as separate MOs, each without its UDH.
type MO struct {
	From, To   string
	FromTON    byte // the source address's type of number (1: international)
	Text       string
	DataCoding byte // 0xFF when gosmpp does not know the coding
}

// handleMO answers a deliver_sm that is not a receipt: an MO goes to
// OnMO first, and the deliver_sm_resp is ESME_ROK only once OnMO has
// returned nil (its effect is committed); on an error it is ESME_RX_T_APPN
// so the SMSC delivers it again. Other notifications are acknowledged.
func (c *Client) handleMO(d *pdu.DeliverSM) pdu.PDU {
	resp := d.GetResponse()
	if d.EsmClass&esmTypeMask != 0 || c.opts.OnMO == nil {
		return resp
	}
	mo := moFromPDU(d)
	if err := c.opts.OnMO(mo); err != nil {
		c.log.Warn("reply not stored, asking for redelivery", slog.String("from", mo.From), slog.Any(logError, err))
		resp.(*pdu.DeliverSMResp).CommandStatus = data.ESME_RX_T_APPN
	}
	return resp
}

// moFromPDU decodes an MO's addresses and text.
func moFromPDU(d *pdu.DeliverSM) MO {
	raw, _ := d.Message.GetMessageData()
	if len(raw) == 0 {
		for tag, f := range d.OptionalParameters {
			if uint16(tag) == TagMessagePayload {
				raw = f.Data
			}
		}
	}
	mo := MO{From: d.SourceAddr.Address(), FromTON: d.SourceAddr.Ton(), To: d.DestAddr.Address(), DataCoding: 0xFF}
	if enc := d.Message.Encoding(); enc != nil {
		mo.DataCoding = enc.DataCoding()
	}
	mo.Text = DecodeText(mo.DataCoding, raw)
	return mo
}

// DecodeText decodes an SMS payload by its data_coding: GSM-7 (unpacked,
// as SMPP carries it), IA5/ASCII, Latin-1 or UCS-2; an unknown coding is
// read as UTF-8 when valid, else Latin-1.
func DecodeText(coding byte, b []byte) string {
	switch coding {
	case codingGSM7:
		return decodeGSM7(b)
	case codingUCS2:
		return decodeUCS2(b)
	case codingASCII:
		return string(b)
	case codingLatin1:
		return latin1(b)
	}
	if utf8.Valid(b) {
		return string(b)
	}
	return latin1(b)
}

func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}
