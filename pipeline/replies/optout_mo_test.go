package replies

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
)

// confirmSender records the confirmations a Replies sends.
type confirmSender struct {
	mu   sync.Mutex
	sent []campaignd.OutMessage
	done chan struct{}
}

// moNow is the fixed "now" of the replies tests.
var moNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func (s *confirmSender) Submit(ctx context.Context, m campaignd.OutMessage) ([]string, error) {
	s.mu.Lock()
	s.sent = append(s.sent, m)
	s.mu.Unlock()
	s.done <- struct{}{}
	return []string{"1"}, nil
}

func (s *confirmSender) Bound() bool { return true }

type moEvents struct {
	mu      sync.Mutex
	results map[string]int
	added   int
}

func (e *moEvents) MOReceived(r string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.results == nil {
		e.results = map[string]int{}
	}
	e.results[r]++
}

func (e *moEvents) SuppressionChanged(change, reason string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if change == "added" && reason == campaignd.SuppressReply {
		e.added += n
	}
}

func TestRepliesHandle(t *testing.T) {
	db := testenv.OpenStoreOnDisk(t)
	snd := &confirmSender{done: make(chan struct{}, 16)}
	ev := &moEvents{}
	r := NewReplies(Options{Store: db, ConfirmText: "Listo", ConfirmSource: "28776", Sender: snd,
		Countries: []string{"US"}, Now: func() time.Time { return moNow }, Events: ev})
	defer r.Close()
	for _, tc := range []struct {
		name, from, text  string
		wantFrom, keyword string
		listed, confirmed bool
	}{
		{"keyword", "525500000001", "BAJA", "525500000001", "BAJA", true, true},
		{"old mobile form", "5215500000002", "baja.", "525500000002", "BAJA", true, true},
		{"first words", "525500000003", "Stop por favor", "525500000003", "STOP", true, true},
		{"accents", "525500000004", "no más", "525500000004", "NO MAS", true, true},
		{"again", "525500000001", "baja", "525500000001", "BAJA", true, false},
		{"international without +", "14155550100", "STOP", "14155550100", "STOP", true, true},
		{"not a keyword", "525500000005", "quiero darme de baja", "525500000005", "", false, false},
		{"keyword from a short code", "28776", "BAJA", "28776", "BAJA", false, false},
		{"empty", "525500000006", "", "525500000006", "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := r.Handle(Incoming{From: tc.from, To: "28776", Text: tc.text})
			if err != nil {
				t.Fatal(err)
			}
			if m.ID == 0 || m.From != tc.wantFrom || m.Keyword != tc.keyword || m.Text != tc.text || !m.At.Equal(moNow) {
				t.Fatalf("MO %+v", m)
			}
			s, _ := db.Suppressed(tc.wantFrom)
			if (s != nil) != tc.listed {
				t.Fatalf("listed = %v, want %v", s != nil, tc.listed)
			}
			if tc.confirmed {
				<-snd.done
			}
		})
	}
	r.Close()
	snd.mu.Lock()
	defer snd.mu.Unlock()
	if len(snd.sent) != 5 {
		t.Fatalf("%d confirmations, want 5: %+v", len(snd.sent), snd.sent)
	}
	if c := snd.sent[0]; c.Source != "28776" || c.Dest != "525500000001" || c.Text != "Listo" {
		t.Fatalf("confirmation %+v", c)
	}
	// A confirmation is tracked nowhere: a receipt for it would only be a
	// stranger to the receipt matcher, and in auto mode it votes against
	// the SMSC's real id scheme (receipts then held for 10 minutes).
	for _, c := range snd.sent {
		if !c.NoReceipt {
			t.Fatalf("confirmation asks for a delivery receipt: %+v", c)
		}
	}
	mos, _, _ := db.MOs(0, 0)
	if len(mos) != 9 {
		t.Fatalf("%d replies kept, want 9", len(mos))
	}
	if ev.results[MOKeyword] != 7 || ev.results[MOOther] != 2 || ev.added != 5 {
		t.Fatalf("events %+v", ev)
	}
	log, _ := db.AuditLog(0)
	if len(log) != 5 || log[0].Action != "suppress" || log[0].User != "sms" {
		t.Fatalf("audit %+v", log)
	}
}

// failingReplyStore cannot write.
type failingReplyStore struct{}

func (failingReplyStore) SaveReply(*campaignd.MO, *campaignd.Suppression) (bool, error) {
	return false, errors.New("disk full")
}
func (failingReplyStore) Audit(campaignd.AuditEntry) error { return nil }

// A reply that cannot be stored is an error (the SMSC is asked to deliver
// it again) and sends no confirmation.
func TestRepliesStoreFailure(t *testing.T) {
	snd := &confirmSender{done: make(chan struct{}, 1)}
	r := NewReplies(Options{Store: failingReplyStore{}, ConfirmText: "Listo", Sender: snd})
	if _, err := r.Handle(Incoming{From: "525500000001", Text: "BAJA"}); err == nil {
		t.Fatal("no error")
	}
	r.Close()
	if len(snd.sent) != 0 {
		t.Fatal("confirmation sent for a reply not stored")
	}
}
