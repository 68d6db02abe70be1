package campaignd_test

import (
	"testing"

	"campaignd"
)

const (
	dlv   = campaignd.StateDelivered
	undlv = campaignd.StateUndeliverable
	exp   = campaignd.StateExpired
	rej   = campaignd.StateRejected
	unk   = campaignd.StateUnknown
)

func TestSettleParts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parts []campaignd.MessageState
		want  campaignd.MessageState
		ok    bool
	}{
		{"one part delivered", []campaignd.MessageState{dlv}, dlv, true},
		{"all delivered", []campaignd.MessageState{dlv, dlv, dlv}, dlv, true},
		{"worst part wins, last", []campaignd.MessageState{dlv, dlv, undlv}, undlv, true},
		{"worst part wins, first", []campaignd.MessageState{rej, dlv}, rej, true},
		{"first part awaits its receipt", []campaignd.MessageState{"", dlv}, "", false},
		{"last part awaits its receipt", []campaignd.MessageState{dlv, exp, ""}, "", false},
		{"no part has a receipt", []campaignd.MessageState{"", ""}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := campaignd.SettleParts(tc.parts)
			if got != tc.want || ok != tc.ok {
				t.Errorf("SettleParts(%v) = %q, %v; want %q, %v", tc.parts, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestSettleSubmitted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parts []campaignd.MessageState
		to    campaignd.MessageState
		want  campaignd.MessageState
	}{
		{"no receipt yet: the parts count as UNKNOWN", []campaignd.MessageState{"", ""}, unk, unk},
		{"a delivered part and a missing one", []campaignd.MessageState{dlv, ""}, unk, unk},
		{"a worse part than to wins", []campaignd.MessageState{undlv, ""}, unk, undlv},
		{"to worse than every part", []campaignd.MessageState{dlv, dlv}, rej, rej},
		{"a missing part is worse than an accepted one", []campaignd.MessageState{campaignd.StateAccepted, ""}, campaignd.StateAccepted, unk},
		{"no parts (never split)", nil, exp, exp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := campaignd.SettleSubmitted(tc.parts, tc.to); got != tc.want {
				t.Errorf("SettleSubmitted(%v, %q) = %q, want %q", tc.parts, tc.to, got, tc.want)
			}
		})
	}
}

func TestChangeApplies(t *testing.T) {
	c := campaignd.Change{From: campaignd.StateSubmitted, To: dlv}
	for _, tc := range []struct {
		stored campaignd.MessageState
		want   bool
	}{
		{campaignd.StateSubmitted, true},
		{campaignd.StateQueued, false},    // stale: not submitted yet
		{dlv, false},                      // repeated: already settled
		{campaignd.StateCancelled, false}, // newer state wins
	} {
		if got := c.Applies(tc.stored); got != tc.want {
			t.Errorf("Change{From: submitted}.Applies(%q) = %v, want %v", tc.stored, got, tc.want)
		}
	}
}
