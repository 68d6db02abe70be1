package store

import (
	"reflect"
	"testing"

	"campaignd"
)

func TestMsgStateBinaryRoundTrip(t *testing.T) {
	for _, s := range []msgState{
		{State: campaignd.StateQueued},
		{State: campaignd.StateQueued, Attempts: 3},
		{State: campaignd.StateSubmitted, Attempts: 1, SMSCIDs: []string{"0A1f", ""}, Parts: []campaignd.MessageState{"", campaignd.StateDelivered}, SubmittedAt: 1700000000123},
		{State: campaignd.StateRejected, Attempts: 5, ErrorCode: 0xFFFFFFFF, SettledAt: -1},
		{State: "SOMETHING", Parts: []campaignd.MessageState{"ELSE", campaignd.StateUnknown}, SMSCIDs: []string{"x", "y"}},
	} {
		v := s.appendBinary(nil)
		var got msgState
		if err := got.decode(v); err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Fatalf("round trip %+v = %+v", s, got)
		}
		if isSubmitted(v) != (s.State == campaignd.StateSubmitted) {
			t.Fatalf("isSubmitted(%+v) wrong", s)
		}
		for n := 0; n < len(v); n++ { // every truncation is an error, never a panic
			if err := new(msgState).decode(v[:n]); err == nil {
				t.Fatalf("%+v truncated to %d bytes decoded", s, n)
			}
		}
		if err := new(msgState).decode(append(v, 0)); err == nil {
			t.Fatalf("%+v with a trailing byte decoded", s)
		}
	}
	if err := new(msgState).decode([]byte{2, 1}); err == nil {
		t.Fatal("an unknown version decoded")
	}
}

func TestCountsBinaryRoundTrip(t *testing.T) {
	c := campaignd.Counts{Total: 9, Queued: 1, Submitted: 2, Delivered: 3, Failed: 4, Unknown: 5, Cancelled: -6}
	var got campaignd.Counts
	got.Total = 9
	if err := decodeCounts(appendCounts(nil, &c), &got); err != nil || got != c {
		t.Fatalf("%+v -> %+v, %v", c, got, err)
	}
}

func FuzzMsgStateDecode(f *testing.F) {
	f.Add((&msgState{State: campaignd.StateSubmitted, SMSCIDs: []string{"a"}, Parts: []campaignd.MessageState{""}}).appendBinary(nil))
	f.Add([]byte(`{"s":"submitted","ids":["a"]}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		var s msgState
		if s.decode(v) == nil && len(v) > 0 && v[0] == hotV1 {
			var again msgState
			if err := again.decode(s.appendBinary(nil)); err != nil || !reflect.DeepEqual(again, s) {
				t.Fatalf("re-encoding %+v: %+v, %v", s, again, err)
			}
		}
	})
}
