package campaignd

import (
	"testing"
	"time"
)

func TestSafeCSV(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"Hola", "Hola"},
		{"=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"},
		{"=1+1", "'=1+1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"},
		{"\rx", "'\rx"},
		{"+1+1", "'+1+1"},
		{"-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"},
		{"+Inf", "'+Inf"},
		{"-", "'-"},
		{"+", "'+"},
		{"-5", "-5"},
		{"+5215512345678", "+5215512345678"},
		{"+52 (55) 1234-5678", "+52 (55) 1234-5678"},
		{"-3.5", "-3.5"},
		{"6001234567", "6001234567"},
		{"a=b", "a=b"},
	} {
		if got := SafeCSV(tc.in); got != tc.want {
			t.Errorf("SafeCSV(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCheckHorizon(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		at   time.Time
		ok   bool
	}{
		{"past", now.Add(-time.Hour), true},
		{"tomorrow", now.Add(24 * time.Hour), true},
		{"at the limit", now.Add(MaxScheduleAhead), true},
		{"just past the limit", now.Add(MaxScheduleAhead + time.Minute), false},
		{"year 9999", time.Date(9999, 12, 31, 23, 59, 0, 0, time.UTC), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckHorizon(now, tc.at)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckHorizon = %v, want ok=%v", err, tc.ok)
			} else if err != nil && ErrorCode(err) != EINVALID {
				t.Fatalf("code %q, want %q", ErrorCode(err), EINVALID)
			}
		})
	}
}
