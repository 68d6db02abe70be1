package engine

import (
	"fmt"
	"strings"
	"time"
)

// SendWindow is the daily period in which messages may be submitted
// (sending.window, e.g. "08:00-21:00", local time). The zero value is always
// open. A window whose end is before its start spans midnight
// ("21:00-06:00").
type SendWindow struct {
	set        bool
	start, end time.Duration // offsets from local midnight
	loc        *time.Location
}

// ParseSendWindow parses "HH:MM-HH:MM" in loc; "" is always open.
func ParseSendWindow(s string, loc *time.Location) (SendWindow, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return SendWindow{}, nil
	}
	if loc == nil {
		loc = time.Local
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return SendWindow{}, fmt.Errorf("send window %q: want HH:MM-HH:MM", s)
	}
	start, err := parseClock(a)
	if err != nil {
		return SendWindow{}, fmt.Errorf("send window %q: %w", s, err)
	}
	end, err := parseClock(b)
	if err != nil {
		return SendWindow{}, fmt.Errorf("send window %q: %w", s, err)
	}
	if start == end {
		return SendWindow{}, fmt.Errorf("send window %q: start and end are equal", s)
	}
	return SendWindow{set: true, start: start, end: end, loc: loc}, nil
}

func parseClock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// String returns the window as configured, "" when always open.
func (w SendWindow) String() string {
	if !w.set {
		return ""
	}
	f := func(d time.Duration) string { return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60) }
	return f(w.start) + "-" + f(w.end)
}

// midnight returns local midnight of t's day and t's offset into the day
// (wall clock, so DST days keep their HH:MM meaning).
func (w SendWindow) midnight(t time.Time) (time.Time, time.Duration) {
	t = t.In(w.loc)
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, w.loc),
		time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second + time.Duration(t.Nanosecond())
}

// Open reports whether messages may be submitted at t.
func (w SendWindow) Open(t time.Time) bool {
	if !w.set {
		return true
	}
	_, off := w.midnight(t)
	if w.start < w.end {
		return off >= w.start && off < w.end
	}
	return off >= w.start || off < w.end
}

// NextOpen returns the next time at or after t when the window opens (t
// itself when it is open).
func (w SendWindow) NextOpen(t time.Time) time.Time {
	if w.Open(t) {
		return t
	}
	day, off := w.midnight(t)
	if off >= w.start {
		y, m, d := day.Date()
		day = time.Date(y, m, d+1, 0, 0, 0, 0, w.loc)
	}
	y, m, d := day.Date()
	return time.Date(y, m, d, int(w.start.Hours()), int(w.start.Minutes())%60, 0, 0, w.loc)
}
