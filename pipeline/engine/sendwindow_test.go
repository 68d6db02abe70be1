package engine_test

import (
	"testing"
	"time"

	"campaignd/pipeline/engine"
)

func TestSendWindow(t *testing.T) {
	mx, err := time.LoadLocation("America/Mexico_City")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	at := func(h, m int) time.Time { return time.Date(2026, 5, 4, h, m, 0, 0, mx) }
	tests := []struct {
		name   string
		window string
		t      time.Time
		open   bool
		next   time.Time
	}{
		{"always", "", at(3, 0), true, at(3, 0)},
		{"before", "08:00-21:00", at(7, 59), false, at(8, 0)},
		{"at start", "08:00-21:00", at(8, 0), true, at(8, 0)},
		{"inside", "08:00-21:00", at(20, 59), true, at(20, 59)},
		{"at end", "08:00-21:00", at(21, 0), false, time.Date(2026, 5, 5, 8, 0, 0, 0, mx)},
		{"overnight inside late", "21:00-06:00", at(23, 0), true, at(23, 0)},
		{"overnight inside early", "21:00-06:00", at(5, 0), true, at(5, 0)},
		{"overnight closed", "21:00-06:00", at(12, 0), false, at(21, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := engine.ParseSendWindow(tt.window, mx)
			if err != nil {
				t.Fatal(err)
			}
			if got := w.Open(tt.t); got != tt.open {
				t.Fatalf("Open(%v) = %v", tt.t, got)
			}
			if got := w.NextOpen(tt.t); !got.Equal(tt.next) {
				t.Fatalf("NextOpen(%v) = %v, want %v", tt.t, got, tt.next)
			}
			if w.String() != tt.window {
				t.Fatalf("String() = %q", w.String())
			}
		})
	}
	for _, bad := range []string{"8-21", "08:00", "08:00-08:00", "25:00-26:00"} {
		if _, err := engine.ParseSendWindow(bad, mx); err == nil {
			t.Errorf("ParseSendWindow(%q) accepted", bad)
		}
	}
	// The window is read in the configured zone (UTC-6), not in the clock's.
	w, _ := engine.ParseSendWindow("08:00-21:00", mx)
	if w.Open(time.Date(2026, 5, 4, 15, 0, 0, 0, time.UTC)) != true || w.Open(time.Date(2026, 5, 4, 3, 0, 0, 0, time.UTC)) {
		t.Fatal("window not applied in its location")
	}
}
