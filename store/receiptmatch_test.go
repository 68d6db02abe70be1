package store_test

import (
	"fmt"
	"testing"
	"time"

	"campaignd"
	"campaignd/store"
)

func TestCanonicalID(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{" 0003E8\x00", "3e8"}, {"1000", "1000"}, {"000", "0"}, {"0x3E8", "0x3e8"},
		{"00AbC-12", "00abc-12"}, {"5F1D2C7A-0B3E-4E55-9C1A-3A7B2E6D8F90", "5f1d2c7a-0b3e-4e55-9c1a-3a7b2e6d8f90"},
		{"", ""}, {"  ", ""},
	} {
		if got := campaignd.CanonicalID(tt.in); got != tt.want {
			t.Errorf("CanonicalID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// matchHarness submits messages of one broadcast and feeds receipts.
type matchHarness struct {
	t   *testing.T
	db  *store.DB
	b   *campaignd.Broadcast
	opt campaignd.SaveOptions
	res *campaignd.ChangeResult // of the last call
}

func newMatchHarness(t *testing.T, db *store.DB, n int, format string) *matchHarness {
	return &matchHarness{t: t, db: db, b: ingest(t, db, "m.csv", n, ""), opt: campaignd.SaveOptions{IDFormat: format}}
}

func (h *matchHarness) save(cs []campaignd.Change, rs []campaignd.ReceiptIn) *campaignd.ChangeResult {
	h.t.Helper()
	res, err := h.db.SaveChanges(cs, rs, h.opt)
	if err != nil {
		h.t.Fatal(err)
	}
	h.res = res
	return res
}

func (h *matchHarness) submit(idx uint32, ids ...string) {
	h.t.Helper()
	h.save([]campaignd.Change{{BroadcastID: h.b.ID, Index: idx, From: campaignd.StateQueued, To: campaignd.StateSubmitted,
		SMSCIDs: ids, At: time.Now()}}, nil)
}

func (h *matchHarness) receipt(id string, stat campaignd.MessageState) string {
	h.t.Helper()
	return h.save(nil, []campaignd.ReceiptIn{{ID: id, Stat: stat, At: time.Now()}}).Receipts[0]
}

// scan runs passes over the held receipts, letting every one vote, until a
// pass ends with the scheme known and nothing left to look at; it returns
// the scheme learned on the way.
func (h *matchHarness) scan() string {
	h.t.Helper()
	opt := h.opt
	defer func() { h.opt = opt }()
	h.opt.ResolveHeld, h.opt.VoteBefore = true, time.Now().Add(time.Hour)
	learned := ""
	for pass := 0; pass < 10; pass++ {
		h.opt.ResolveFrom = nil
		learnedNow := false
		for {
			h.save(nil, nil)
			if h.res.Learned != "" {
				learned, learnedNow = h.res.Learned, true
			}
			if h.res.ResolveNext == nil {
				break
			}
			h.opt.ResolveFrom = h.res.ResolveNext
		}
		if learned != "" && !learnedNow { // a whole pass under the learned scheme
			break
		}
	}
	return learned
}

func (h *matchHarness) state(idx uint32) campaignd.MessageState {
	h.t.Helper()
	m, err := h.db.Message(h.b.ID, idx)
	if err != nil {
		h.t.Fatal(err)
	}
	return m.State
}

func (h *matchHarness) wantStates(want ...campaignd.MessageState) {
	h.t.Helper()
	for i, w := range want {
		if got := h.state(uint32(i)); got != w {
			h.t.Errorf("message %d: %s, want %s", i, got, w)
		}
	}
}

const (
	sub = campaignd.StateSubmitted
	dlv = campaignd.StateDelivered
	und = campaignd.StateUndeliverable
)

func TestReceiptLookupForms(t *testing.T) {
	type rc struct {
		id      string
		stat    campaignd.MessageState
		outcome string
	}
	for _, tt := range []struct {
		name     string
		format   string
		submits  []string // message i gets submits[i]
		receipts []rc
		want     []campaignd.MessageState
	}{
		{"exact, case and zeros free", campaignd.IDFormatExact, []string{"3E8", "0001000", "ab-CD"},
			[]rc{{"3e8", dlv, campaignd.ReceiptMatched}, {"1000", und, campaignd.ReceiptMatched}, {"AB-cd", dlv, campaignd.ReceiptMatched}},
			[]campaignd.MessageState{dlv, und, dlv}},
		{"exact never converts", campaignd.IDFormatExact, []string{"3E8"},
			[]rc{{"1000", dlv, campaignd.ReceiptEarly}}, []campaignd.MessageState{sub}},
		{"submit hex, receipt decimal", campaignd.IDFormatSubmitHexReceiptDecimal, []string{"3E8", "1000"},
			[]rc{{"1000", dlv, campaignd.ReceiptMatched}, {"4096", und, campaignd.ReceiptMatched}, {"3e8", dlv, campaignd.ReceiptEarly}},
			[]campaignd.MessageState{dlv, und}},
		{"submit decimal, receipt hex", campaignd.IDFormatSubmitDecimalReceiptHex, []string{"1000", "4096"},
			[]rc{{"3E8", und, campaignd.ReceiptMatched}, {"0x1000", dlv, campaignd.ReceiptEarly}, {"1000", dlv, campaignd.ReceiptMatched}},
			[]campaignd.MessageState{und, dlv}},
		{"repeat changes nothing", campaignd.IDFormatExact, []string{"7"},
			[]rc{{"7", dlv, campaignd.ReceiptMatched}, {"7", und, campaignd.ReceiptDuplicate}}, []campaignd.MessageState{dlv}},
		{"auto: a UUID has one form", campaignd.IDFormatAuto, []string{"5f1d2c7a-0b3e-4e55"},
			[]rc{{"5F1D2C7A-0B3E-4E55", und, campaignd.ReceiptMatched}}, []campaignd.MessageState{und}},
		{"auto: one digit is the same in every form", campaignd.IDFormatAuto, []string{"7"},
			[]rc{{"7", und, campaignd.ReceiptMatched}}, []campaignd.MessageState{und}},
		{"auto: ambiguous held", campaignd.IDFormatAuto, []string{"3e8", "1000"},
			[]rc{{"1000", dlv, campaignd.ReceiptHeld}, {"3e8", und, campaignd.ReceiptHeld}}, []campaignd.MessageState{sub, sub}},
		{"auto: several forms before learning are held", campaignd.IDFormatAuto, []string{"3e9"},
			[]rc{{"3e9", dlv, campaignd.ReceiptHeld}}, []campaignd.MessageState{sub}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, db *store.DB) {
				h := newMatchHarness(t, db, len(tt.submits), tt.format)
				for i, id := range tt.submits {
					h.submit(uint32(i), id)
				}
				for _, r := range tt.receipts {
					if got := h.receipt(r.id, r.stat); got != r.outcome {
						t.Errorf("receipt %s: %s, want %s", r.id, got, r.outcome)
					}
				}
				h.wantStates(tt.want...)
			})
		})
	}
}

// The scenario of the finding: a hex counter crossing 3E8 → 1000. Auto holds
// what it cannot tell apart, learns "exact" from unambiguous receipts, then
// resolves the held ones, each to its own message.
func TestAutoLearnsAndResolvesHeld(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		h := newMatchHarness(t, db, 9, campaignd.IDFormatAuto)
		ids := []string{"3E8", "1000", "3E9", "3EA", "3EB", "3EC", "3ED", "FFFF", "3EE"}
		for i, id := range ids {
			h.submit(uint32(i), id)
		}
		stat := func(i int) campaignd.MessageState { return []campaignd.MessageState{dlv, und}[i%2] }
		// 1000 is ambiguous (1000 = 0x3E8 in decimal), and so is 3E8 (hex for
		// decimal 1000); until auto has learned, every receipt is held.
		for _, i := range []int{1, 0, 2, 3, 4, 5, 6} {
			if out := h.receipt(ids[i], stat(i)); out != campaignd.ReceiptHeld {
				t.Fatalf("receipt %s before learning: %s", ids[i], out)
			}
		}
		h.wantStates(sub, sub, sub, sub, sub, sub, sub, sub, sub)
		if learned := h.scan(); learned != campaignd.IDFormatExact {
			t.Fatalf("learned %q", learned)
		}
		if sc, _ := h.db.IDScheme(); sc != campaignd.IDFormatExact {
			t.Fatalf("IDScheme = %q", sc)
		}
		h.wantStates(stat(0), stat(1), stat(2), stat(3), stat(4), stat(5), stat(6), sub, sub)
		if out := h.receipt("3ee", dlv); out != campaignd.ReceiptMatched {
			t.Fatalf("after learning: %s", out)
		}
		if n, _, _ := h.db.ExpireEarlyReceipts(time.Now().Add(time.Hour)); n != 0 {
			t.Fatalf("%d receipts still held", n)
		}
	})
}

// A receipt before its submit_sm_resp is held, then applied when the id is
// recorded; learned or fixed formats apply it at once, in the allowed form.
func TestEarlyReceiptForms(t *testing.T) {
	for _, tt := range []struct{ format, submit, receipt string }{
		{campaignd.IDFormatExact, "00ABC", "abc"},
		{campaignd.IDFormatSubmitHexReceiptDecimal, "3E8", "1000"},
		{campaignd.IDFormatSubmitDecimalReceiptHex, "1000", "3e8"},
	} {
		t.Run(tt.format, func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, db *store.DB) {
				h := newMatchHarness(t, db, 1, tt.format)
				if out := h.receipt(tt.receipt, und); out != campaignd.ReceiptEarly {
					t.Fatalf("early: %s", out)
				}
				if out := h.receipt(tt.receipt, dlv); out != campaignd.ReceiptDuplicate {
					t.Fatalf("repeat while held: %s", out)
				}
				h.submit(0, tt.submit)
				h.wantStates(und)
				if n, _, _ := h.db.ExpireEarlyReceipts(time.Now().Add(time.Hour)); n != 0 {
					t.Fatalf("%d receipts still held", n)
				}
			})
		})
	}
}

func TestIDCollision(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		h := newMatchHarness(t, db, 4, campaignd.IDFormatExact)
		h.submit(0, "77")
		if h.receipt("77", dlv) != campaignd.ReceiptMatched {
			t.Fatal("first 77 not matched")
		}
		h.submit(1, "77") // 0 has its receipt: no collision, 1 owns 77 now
		if len(h.res.Collisions) != 0 {
			t.Fatalf("collisions = %+v", h.res.Collisions)
		}
		h.submit(2, "77") // 1 still awaits: collision
		if c := h.res.Collisions; len(c) != 1 || c[0].OldIndex != 1 || c[0].NewIndex != 2 || c[0].ID != "77" {
			t.Fatalf("collisions = %+v", c)
		}
		if out := h.receipt("77", und); out != campaignd.ReceiptUnmatched {
			t.Fatalf("shared id: %s", out)
		}
		h.wantStates(dlv, sub, sub)
		// Two parts of one message with the same id collide too.
		h.submit(3, "88", "088")
		if len(h.res.Collisions) != 1 {
			t.Fatalf("collisions = %+v", h.res.Collisions)
		}
	})
}

// Early receipt held for a shared id is dropped, never guessed.
func TestHeldReceiptOnSharedID(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		h := newMatchHarness(t, db, 3, campaignd.IDFormatExact)
		h.submit(0, "5")
		h.submit(1, "5")
		h.opt.IDFormat = campaignd.IDFormatAuto
		if out := h.receipt("5", dlv); out != campaignd.ReceiptUnmatched {
			t.Fatalf("%s", out)
		}
		h.wantStates(sub, sub)
	})
}

// Thousands of ids of a hex counter through 0x3E8 → 0x1000 and beyond, with
// every receipt coming after all submits, in a scrambled order: each message
// gets its own status, none is held or unmatched at the end.
func TestManyHexIDsLate(t *testing.T) {
	const n = 5000
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		h := newMatchHarness(t, db, n, campaignd.IDFormatAuto)
		var cs []campaignd.Change
		for i := 0; i < n; i++ {
			cs = append(cs, campaignd.Change{BroadcastID: h.b.ID, Index: uint32(i), From: campaignd.StateQueued,
				To: campaignd.StateSubmitted, SMSCIDs: []string{fmt.Sprintf("%X", 0x3E0+i)}, At: time.Now()})
			if len(cs) == 500 {
				h.save(cs, nil)
				cs = nil
			}
		}
		stat := func(i int) campaignd.MessageState {
			if i%3 == 0 {
				return und
			}
			return dlv
		}
		var rs []campaignd.ReceiptIn
		for k := 0; k < n; k++ {
			i := (k * 2003) % n // a permutation: 2003 is prime to 5000
			rs = append(rs, campaignd.ReceiptIn{ID: fmt.Sprintf("%x", 0x3E0+i), Stat: stat(i), At: time.Now()})
			if len(rs) == 250 || k == n-1 {
				h.opt.ResolveHeld, h.opt.VoteBefore = true, time.Now().Add(time.Hour)
				h.save(nil, rs)
				for h.res.ResolveNext != nil {
					h.opt.ResolveFrom = h.res.ResolveNext
					h.save(nil, nil)
				}
				h.opt.ResolveFrom = nil
				for _, o := range h.res.Receipts {
					if o == campaignd.ReceiptUnmatched || o == campaignd.ReceiptDuplicate {
						t.Fatalf("outcome %s", o)
					}
				}
				rs = nil
			}
		}
		for i := 0; i < n; i++ {
			if got := h.state(uint32(i)); got != stat(i) {
				t.Fatalf("message %d (%X): %s, want %s", i, 0x3E0+i, got, stat(i))
			}
		}
		if n, _, _ := h.db.ExpireEarlyReceipts(time.Now().Add(time.Hour)); n != 0 {
			t.Fatalf("%d receipts still held", n)
		}
	})
}

// A small decimal counter: ids 10–20 are nearly all ambiguous one by one
// (16 is 0x10 in decimal, 10 is hex for 16), yet the misses of the other
// forms teach auto the scheme, and every receipt ends on its own message.
func TestAutoLearnsFromMisses(t *testing.T) {
	for _, tt := range []struct {
		name    string
		resp    func(int) string
		receipt func(int) string
		want    string
	}{
		{"decimal", func(n int) string { return fmt.Sprint(n) }, func(n int) string { return fmt.Sprint(n) }, campaignd.IDFormatExact},
		{"hex-decimal", func(n int) string { return fmt.Sprintf("%X", n) }, func(n int) string { return fmt.Sprint(n) }, campaignd.IDFormatSubmitHexReceiptDecimal},
		{"decimal-hex", func(n int) string { return fmt.Sprint(n) }, func(n int) string { return fmt.Sprintf("%x", n) }, campaignd.IDFormatSubmitDecimalReceiptHex},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const n = 40
			forEachEngine(t, func(t *testing.T, db *store.DB) {
				h := newMatchHarness(t, db, n, campaignd.IDFormatAuto)
				// The second half's receipts overtake their submit_sm_resp: some
				// of them find a message of the first half in a wrong form.
				for i := 0; i < n/2; i++ {
					h.submit(uint32(i), tt.resp(i+1))
				}
				stat := func(i int) campaignd.MessageState {
					return []campaignd.MessageState{dlv, und, campaignd.StateExpired}[i%3]
				}
				learned := ""
				for i := n - 1; i >= 0; i-- {
					h.receipt(tt.receipt(i+1), stat(i))
					if h.res.Learned != "" {
						learned = h.res.Learned
					}
				}
				for i := n / 2; i < n; i++ {
					h.submit(uint32(i), tt.resp(i+1))
					if h.res.Learned != "" {
						learned = h.res.Learned
					}
				}
				if learned != "" {
					t.Fatalf("learned %q from receipts that had not waited", learned)
				}
				if learned = h.scan(); learned != tt.want {
					t.Fatalf("learned %q, want %q", learned, tt.want)
				}
				for i := 0; i < n; i++ {
					if got := h.state(uint32(i)); got != stat(i) {
						t.Errorf("message %d: %s, want %s", i, got, stat(i))
					}
				}
			})
		})
	}
}

// A first send too small for auto to learn the scheme still settles: once a
// held receipt is old enough that every submit_sm_resp before it is
// recorded (SettleBefore), a receipt whose id finds exactly one part, by the
// id as given, and nothing in another form, is that part's. A receipt whose
// forms find two parts, or one part only by a conversion, stays held, and
// nothing is applied before SettleBefore.
func TestAutoSettlesUniqueHeldReceiptsLate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		h := newMatchHarness(t, db, 15, campaignd.IDFormatAuto)
		ids := []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "16", "13", "1f"}
		for i, id := range ids {
			h.submit(uint32(i), id)
		}
		// 1–9 read the same in every form: matched at once. 10 is ambiguous
		// (decimal 10, or hex 10 = decimal 16, which exists); 11, 12 and 13 find
		// only themselves (hex 11 = 17, 12 = 18, 13 = 19 do not exist).
		for i := 0; i < 9; i++ {
			if out := h.receipt(ids[i], dlv); out != campaignd.ReceiptMatched {
				t.Fatalf("receipt %s: %s", ids[i], out)
			}
		}
		// 31 finds only 1f, and only by reading 31 as decimal for hex 1f: a
		// conversion, never applied before the scheme is learned.
		for _, id := range []string{"10", "11", "12", "13", "31"} {
			if out := h.receipt(id, und); out != campaignd.ReceiptHeld {
				t.Fatalf("receipt %s before learning: %s", id, out)
			}
		}
		// Passes before SettleBefore change nothing (too few votes to learn).
		h.opt.SettleBefore = time.Now().Add(-time.Hour)
		if learned := h.scan(); learned != "" {
			t.Fatalf("learned %q from 4 receipts", learned)
		}
		h.wantStates(dlv, dlv, dlv, dlv, dlv, dlv, dlv, dlv, dlv, sub, sub, sub, sub, sub, sub)
		// Later: the unique ones are applied, the ambiguous one stays held.
		h.opt.SettleBefore = time.Now().Add(time.Hour)
		h.scan()
		h.wantStates(dlv, dlv, dlv, dlv, dlv, dlv, dlv, dlv, dlv, sub, und, und, sub, und, sub)
		if n, _, _ := h.db.ExpireEarlyReceipts(time.Now().Add(time.Hour)); n != 2 {
			t.Fatalf("%d receipts still held, want 2 (the ambiguous 10, and 31 found only by conversion)", n)
		}
	})
}

// Submits lost in a crash (accepted by the SMSC, never recorded, sent again
// under new ids) have receipts that find nothing in the SMSC's real form. With
// a small sequential counter, reading such an id in a wrong form often finds
// another message (decimal 123 read as hex is 291, sent later): auto must not
// take those chance hits for evidence and learn a wrong scheme, whatever the
// counter's form, where the crashes fall, how many submits each loses and how
// long receipts wait before they vote.
func TestAutoNotFooledByLostSubmits(t *testing.T) {
	forms := []struct {
		name          string
		resp, receipt func(int) string
		want          string
	}{
		{"decimal", func(n int) string { return fmt.Sprint(n) }, func(n int) string { return fmt.Sprint(n) }, campaignd.IDFormatExact},
		{"hex", func(n int) string { return fmt.Sprintf("%X", n) }, func(n int) string { return fmt.Sprintf("%x", n) }, campaignd.IDFormatExact},
		{"hex-decimal", func(n int) string { return fmt.Sprintf("%X", n) }, func(n int) string { return fmt.Sprint(n) }, campaignd.IDFormatSubmitHexReceiptDecimal},
		{"decimal-hex", func(n int) string { return fmt.Sprint(n) }, func(n int) string { return fmt.Sprintf("%x", n) }, campaignd.IDFormatSubmitDecimalReceiptHex},
	}
	const n = 1500
	for _, tt := range []struct {
		crashes       []int // counter values where a crash loses submits
		lost, voteLag int   // submits lost per crash; counters sent before a receipt votes
	}{
		{[]int{40}, 10, 3000},
		{[]int{200, 500, 800, 1100}, 10, 3000},
		{[]int{150, 700}, 20, 3000},
		{[]int{300, 900}, 10, 100},
		{[]int{25, 60}, 3, 30},
		{[]int{30, 80, 130}, 10, 30},
		{[]int{100, 300, 500, 700}, 20, 100},
		{[]int{60, 120, 180, 240, 300, 360}, 10, 50},
	} {
		for _, f := range forms {
			t.Run(fmt.Sprintf("%s/%v-lost-%d-vote-%d", f.name, tt.crashes, tt.lost, tt.voteLag), func(t *testing.T) {
				testAutoLostSubmits(t, n, tt.crashes, tt.lost, tt.voteLag, f.resp, f.receipt, f.want)
			})
		}
	}
}

func testAutoLostSubmits(t *testing.T, n int, crashes []int, lost, voteLag int, resp, receipt func(int) string, want string) {
	// The matching is the store's logic above the engine: one engine is enough.
	db, _ := openBadgerMemory(t, store.Options{})
	h := newMatchHarness(t, db, n, campaignd.IDFormatAuto)
	stat := func(k int) campaignd.MessageState {
		return []campaignd.MessageState{dlv, und, campaignd.StateExpired}[k%3]
	}
	t0 := time.Now().Add(-time.Hour)
	at := func(counter int) time.Time { return t0.Add(time.Duration(counter) * time.Millisecond) }
	// Message i gets the next counter value; at a crash, lost values go to
	// the SMSC and are never recorded, and the same message is sent again.
	counter, learned := 0, ""
	owner := map[int]int{} // counter -> message, for the recorded ones
	nextCrash := 0
	const receiptLag = 15 // counters sent before a receipt comes
	next := 1             // the next counter whose receipt comes
	for i := 0; i < n; i++ {
		counter++
		if nextCrash < len(crashes) && counter == crashes[nextCrash] {
			counter += lost
			nextCrash++
		}
		owner[counter] = i
		h.opt.ResolveHeld, h.opt.VoteBefore = false, time.Time{}
		h.submit(uint32(i), resp(counter))
		var rs []campaignd.ReceiptIn
		for ; next <= counter-receiptLag; next++ {
			rs = append(rs, campaignd.ReceiptIn{ID: receipt(next), Stat: stat(next), At: at(next + receiptLag)})
		}
		if len(rs) > 0 {
			h.save(nil, rs)
		}
		if i%25 == 24 || i == n-1 {
			h.opt.ResolveHeld, h.opt.VoteBefore = true, at(counter-voteLag)
			for h.opt.ResolveFrom = nil; ; h.opt.ResolveFrom = h.res.ResolveNext {
				h.save(nil, nil)
				if h.res.Learned != "" {
					learned = h.res.Learned
				}
				if h.res.ResolveNext == nil {
					break
				}
			}
			h.opt.ResolveFrom = nil
		}
		if learned != "" && learned != want {
			t.Fatalf("learned %q after message %d (counter %d), want %q or nothing", learned, i, counter, want)
		}
	}
	if l := h.scan(); l != "" {
		learned = l
	}
	if learned != want {
		t.Fatalf("learned %q, want %q", learned, want)
	}
	// Every recorded message that got its receipt has its own status.
	for c := 1; c < next; c++ {
		if i, ok := owner[c]; ok {
			if got := h.state(uint32(i)); got != stat(c) {
				t.Errorf("message %d (counter %d): %s, want %s", i, c, got, stat(c))
			}
		}
	}
}
