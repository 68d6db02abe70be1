package campaignd

import (
	"testing"
	"time"
)

func TestParseValidity(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want time.Duration
		code string // "" when valid
	}{
		{"hours", "48h", 48 * time.Hour, ""},
		{"minutes", "90m", 90 * time.Minute, ""},
		{"days", "2d", 48 * time.Hour, ""},
		{"days and hours", "1d12h", 36 * time.Hour, ""},
		{"upper case and spaces", " 1D 12H ", 36 * time.Hour, ""},
		{"go duration", "48h0m0s", 48 * time.Hour, ""},
		{"lower bound", "10m", 10 * time.Minute, ""},
		{"upper bound", "15d", 15 * 24 * time.Hour, ""},
		{"upper bound in hours", "360h", 360 * time.Hour, ""},
		{"below the bound", "9m59s", 0, EINVALID},
		{"above the bound", "15d1s", 0, EINVALID},
		{"sixteen days", "16d", 0, EINVALID},
		{"zero", "0m", 0, EINVALID},
		{"empty", "", 0, EINVALID},
		{"no unit", "48", 0, EINVALID},
		{"negative", "-2h", 0, EINVALID},
		{"bare unit", "h", 0, EINVALID},
		{"days without number", "d2h", 0, EINVALID},
		{"word", "two days", 0, EINVALID},
		{"days twice", "1d1d", 0, EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseValidity(tc.in)
			if ErrorCode(err) != tc.code {
				t.Fatalf("ParseValidity(%q) = %v, %v; want code %q", tc.in, got, err, tc.code)
			}
			if got != tc.want {
				t.Fatalf("ParseValidity(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestFormatValidity(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{48 * time.Hour, "2d"}, {36 * time.Hour, "1d12h"}, {90 * time.Minute, "1h30m"}, {10 * time.Minute, "10m"},
		{15 * 24 * time.Hour, "15d"}, {5 * time.Second, "5s"}, {0, "0m"},
	} {
		got := FormatValidity(tc.d)
		if got != tc.want {
			t.Errorf("FormatValidity(%v) = %q, want %q", tc.d, got, tc.want)
		}
		if tc.d >= MinValidity {
			if back, err := ParseValidity(got); err != nil || back != tc.d {
				t.Errorf("ParseValidity(FormatValidity(%v)) = %v, %v", tc.d, back, err)
			}
		}
	}
}

func TestValidityTransition(t *testing.T) {
	for _, s := range Statuses {
		want := s == StatusPending || s == StatusScheduled
		to, err := Transition(s, ActionValidity)
		if (err == nil) != want || (err == nil && to != s) {
			t.Errorf("Transition(%s, validity) = %s, %v", s, to, err)
		}
	}
}
