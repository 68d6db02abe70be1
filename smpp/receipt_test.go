package smpp

import (
	"strings"
	"testing"
	"time"
)

func mustDuration(tb testing.TB, s string) time.Duration {
	tb.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func TestNormalizeID(t *testing.T) {
	tests := []struct {
		name, id, want string
	}{
		{"empty", "", ""},
		{"decimal", "12345", "12345"},
		{"decimal leading zeros", "0000012345", "12345"},
		{"all zeros", "000", "0"},
		{"upper hex kept in hex", "A00000002B", "a00000002b"},
		{"lower hex zero padded", "00a00000002b", "a00000002b"},
		{"0x prefix kept", "0x1A", "0x1a"},
		{"spaces and NUL", " 42\x00", "42"},
		{"long hex", "FFFFFFFFFFFFFFFFFF", "ffffffffffffffffff"},
		{"long decimal kept exact", "000123456789012345678901234567890", "123456789012345678901234567890"},
		{"uuid lower-cased, zeros kept", "0F2504E0-4F89-11D3-9A0C-0305E82C3301", "0f2504e0-4f89-11d3-9a0c-0305e82c3301"},
		{"other", "MSG-Abc", "msg-abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NormalizeID(tt.id)
			if got != tt.want {
				t.Fatalf("NormalizeID(%q) = %q, want %q", tt.id, got, tt.want)
			}
			if again := NormalizeID(got); again != got {
				t.Fatalf("not idempotent: %q -> %q", got, again)
			}
		})
	}
}

func TestParseReceipt(t *testing.T) {
	const std = "id:0000012345 sub:001 dlvrd:001 submit date:2501011200 done date:2501011201 stat:DELIVRD err:000 text:hello"
	idTLV := func(id string) TLV { return TLV{Tag: TagReceiptedMessageID, Value: append([]byte(id), 0)} }
	stateTLV := func(b byte) TLV { return TLV{Tag: TagMessageState, Value: []byte{b}} }
	tests := []struct {
		name   string
		short  string
		tlvs   []TLV
		ok     bool
		id     string
		stat   string
		err    string
		doneAt time.Time
	}{
		{name: "standard text", short: std, ok: true, id: "12345", stat: StatDelivered, err: "000",
			doneAt: time.Date(2025, 1, 1, 12, 1, 0, 0, time.UTC)},
		{name: "TLV id preferred", short: std, tlvs: []TLV{idTLV("A00000002B")}, ok: true, id: "a00000002b",
			stat: StatDelivered, err: "000", doneAt: time.Date(2025, 1, 1, 12, 1, 0, 0, time.UTC)},
		{name: "TLV state preferred", short: std, tlvs: []TLV{stateTLV(5)}, ok: true, id: "12345",
			stat: StatUndelivered, err: "000", doneAt: time.Date(2025, 1, 1, 12, 1, 0, 0, time.UTC)},
		{name: "TLVs only", short: "", tlvs: []TLV{idTLV("77"), stateTLV(3)}, ok: true, id: "77", stat: StatExpired},
		{name: "unknown TLV state falls back to text", short: "id:9 stat:REJECTD", tlvs: []TLV{stateTLV(42)},
			ok: true, id: "9", stat: StatRejected},
		{name: "hex id in text", short: "id:a00000002b sub:001 dlvrd:000 submit date:2501011200 done date:250101120130 stat:UNDELIV err:001 text:",
			ok: true, id: "a00000002b", stat: StatUndelivered, err: "001", doneAt: time.Date(2025, 1, 1, 12, 1, 30, 0, time.UTC)},
		{name: "upper-case keys", short: "ID:5 SUB:001 DLVRD:001 SUBMIT DATE:2501011200 DONE DATE:2501011201 STAT:DELIVRD ERR:000 TEXT:x",
			ok: true, id: "5", stat: StatDelivered, err: "000", doneAt: time.Date(2025, 1, 1, 12, 1, 0, 0, time.UTC)},
		{name: "text cannot forge stat", short: "id:5 stat:UNDELIV err:001 text:stat:DELIVRD id:6",
			ok: true, id: "5", stat: StatUndelivered, err: "001"},
		{name: "long stat words", short: "id:5 stat:delivered", ok: true, id: "5", stat: StatDelivered},
		{name: "unknown stat word", short: "id:5 stat:WHATEVER", ok: true, id: "5", stat: StatUnknown},
		{name: "msgid is not id", short: "msgid:5 stat:DELIVRD", ok: false, stat: StatDelivered},
		{name: "no stat", short: "id:5 sub:001", ok: false, id: "5"},
		{name: "empty", short: "", ok: false},
		{name: "bad date ignored", short: "id:5 done date:99999999 stat:DELIVRD", ok: true, id: "5", stat: StatDelivered},
		{name: "network error TLV", short: "", tlvs: []TLV{idTLV("1"), stateTLV(5), {Tag: TagNetworkErrorCode, Value: []byte{3, 0, 27}}},
			ok: true, id: "1", stat: StatUndelivered, err: "3:27"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := ParseReceipt(tt.short, tt.tlvs...)
			if ok != tt.ok || r.MessageID != tt.id || r.Stat != tt.stat || r.Err != tt.err || !r.DoneAt.Equal(tt.doneAt) {
				t.Fatalf("ParseReceipt = %+v, %v; want id %q stat %q err %q done %v ok %v",
					r, ok, tt.id, tt.stat, tt.err, tt.doneAt, tt.ok)
			}
			if r.Raw != tt.short {
				t.Fatalf("Raw = %q", r.Raw)
			}
		})
	}
}

func FuzzParseReceipt(f *testing.F) {
	f.Add("id:0000012345 sub:001 dlvrd:001 submit date:2501011200 done date:2501011201 stat:DELIVRD err:000 text:hello", []byte("A00000002B\x00"), byte(2))
	f.Add("id:5 stat:UNDELIV err:001 text:stat:DELIVRD", []byte(nil), byte(0))
	f.Add("ID:ff STAT:expired", []byte("0x"), byte(9))
	f.Fuzz(func(t *testing.T, short string, id []byte, state byte) {
		var tlvs []TLV
		if id != nil {
			tlvs = append(tlvs, TLV{Tag: TagReceiptedMessageID, Value: id})
		}
		if state != 0 {
			tlvs = append(tlvs, TLV{Tag: TagMessageState, Value: []byte{state}})
		}
		r, ok := ParseReceipt(short, tlvs...)
		if !ok {
			return
		}
		if r.MessageID == "" {
			t.Fatal("ok without an id")
		}
		if _, known := stateCodes[r.Stat]; !known {
			t.Fatalf("unexpected stat %q", r.Stat)
		}
		if NormalizeID(r.MessageID) != r.MessageID {
			t.Fatalf("id %q not in canonical form", r.MessageID)
		}
		if strings.ContainsAny(r.MessageID, "ABCDEF") {
			t.Fatalf("id %q has upper-case hex", r.MessageID)
		}
	})
}
