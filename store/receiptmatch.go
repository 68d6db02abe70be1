package store

import (
	"encoding/binary"
	"errors"
	"math/big"
	"strconv"
	"time"

	"campaignd"
)

// Receipt matching (SPEC §5).
//
//	mi/<id>     -> one or more (bid, index, part), 14 bytes each: the parts whose
//	               submit_sm_resp gave <id>. More than one entry means the SMSC gave
//	               the same id to parts that awaited receipts at the same time (a
//	               collision): a receipt for it cannot be told apart.
//	mr/<id>     -> received, [flags], stat: a receipt held because no message
//	               matches it yet (early), because it matches several (ambiguous)
//	               or because the id scheme is not learned yet (auto).
//	mx/scheme   -> the scheme auto learned, and the votes before that.
//
// <id> is the id as the SMSC gave it, trimmed, lower-cased and without
// leading zeros when it is all hexadecimal digits (CanonicalID): those are
// the only free normalisations. A receipt is looked up in the forms the
// message id format allows: its own id, the hexadecimal form of a decimal
// receipt id (the SMSC answers submits in hex and writes receipts in decimal)
// or the decimal form of a hexadecimal receipt id (the reverse).

var prefixScheme = []byte("mx/scheme")

// Learning: each receipt that matches a part in some form, while auto has not
// learned the scheme, is a vote: a hit for every form that finds a part, a
// miss for every other (under the SMSC's real scheme a receipt always finds
// its part, unless it overtook its submit_sm_resp). auto adopts a scheme with
// at least learnHits hits and at most one miss in ten, once every other scheme
// has at least learnMisses misses more than three times its own and misses at
// least one receipt in three. A handful of misses does not rule a scheme out:
// a crash leaves that many (submits the SMSC accepted that were never
// recorded, whose receipts find nothing in the real form), while with a small
// sequential counter a wrong form finds some other message for most receipts
// (decimal 123 read as hex is 291).
const (
	learnHits   = 5
	learnMisses = 3
)

type scheme uint8

const (
	schemeNone scheme = iota
	schemeExact
	schemeHexDec // submit_sm_resp in hex, receipts in decimal
	schemeDecHex // submit_sm_resp in decimal, receipts in hex
	nSchemes
)

var schemeNames = [nSchemes]string{"", campaignd.IDFormatExact, campaignd.IDFormatSubmitHexReceiptDecimal, campaignd.IDFormatSubmitDecimalReceiptHex}

func (s scheme) String() string { return schemeNames[s] }

func isDecimal(id string) bool {
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	return id != ""
}

func isHex(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return id != ""
}

// decToHex and hexToDec convert canonical ids; ok is false when id is not a
// number in the source base.
func decToHex(id string) (string, bool) {
	if !isDecimal(id) {
		return "", false
	}
	if len(id) <= 19 {
		if v, err := strconv.ParseUint(id, 10, 64); err == nil {
			return strconv.FormatUint(v, 16), true
		}
	}
	v, _ := new(big.Int).SetString(id, 10)
	return v.Text(16), true
}

func hexToDec(id string) (string, bool) {
	if !isHex(id) {
		return "", false
	}
	if len(id) <= 16 {
		if v, err := strconv.ParseUint(id, 16, 64); err == nil {
			return strconv.FormatUint(v, 10), true
		}
	}
	v, _ := new(big.Int).SetString(id, 16)
	return v.Text(10), true
}

// submitForm is the submit_sm_resp id a receipt id stands for under sc.
func submitForm(sc scheme, receiptID string) (string, bool) {
	switch sc {
	case schemeExact:
		return receiptID, true
	case schemeHexDec:
		return decToHex(receiptID)
	case schemeDecHex:
		return hexToDec(receiptID)
	}
	return "", false
}

// receiptForm is the receipt id that stands for submit id submitID under sc.
func receiptForm(sc scheme, submitID string) (string, bool) {
	switch sc {
	case schemeExact:
		return submitID, true
	case schemeHexDec:
		return hexToDec(submitID)
	case schemeDecHex:
		return decToHex(submitID)
	}
	return "", false
}

// matchState is a transaction's view of the id scheme and the message whose
// ids are being recorded (not yet written).
type matchState struct {
	loaded       bool
	learned      scheme
	hits, misses [nSchemes]uint32
	dirty        bool

	cur    *msgState // the message being recorded
	curBid uint64
	curIdx uint32
}

type target struct {
	bid  uint64
	idx  uint32
	part int
}

func (t *changeTxn) loadScheme() error {
	if t.m.loaded {
		return nil
	}
	t.m.loaded = true
	v, err := t.txn.Get(prefixScheme)
	if errors.Is(err, ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if len(v) != 1+8*int(nSchemes) || v[0] >= byte(nSchemes) {
		return errCorrupt
	}
	t.m.learned = scheme(v[0])
	for i := range nSchemes {
		t.m.hits[i] = binary.BigEndian.Uint32(v[1+8*i:])
		t.m.misses[i] = binary.BigEndian.Uint32(v[5+8*i:])
	}
	return nil
}

// saveScheme writes mx/scheme when votes or the learned scheme changed.
func (t *changeTxn) saveScheme() error {
	if !t.m.dirty {
		return nil
	}
	v := []byte{byte(t.m.learned)}
	for i := range nSchemes {
		v = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(v, t.m.hits[i]), t.m.misses[i])
	}
	return t.txn.Set(prefixScheme, v)
}

// schemes lists the forms a receipt may be looked up in.
func (t *changeTxn) schemes() ([]scheme, error) {
	switch t.o.IDFormat {
	case campaignd.IDFormatExact:
		return []scheme{schemeExact}, nil
	case campaignd.IDFormatSubmitHexReceiptDecimal:
		return []scheme{schemeHexDec}, nil
	case campaignd.IDFormatSubmitDecimalReceiptHex:
		return []scheme{schemeDecHex}, nil
	}
	if err := t.loadScheme(); err != nil {
		return nil, err
	}
	if t.m.learned != schemeNone {
		return []scheme{t.m.learned}, nil
	}
	return []scheme{schemeExact, schemeHexDec, schemeDecHex}, nil
}

// vote counts a receipt's hits and misses per scheme (undoing its earlier
// vote, old, when it had one) and learns a scheme when the votes are clear.
// It returns the receipt's vote to keep with it. Only receipts held for a
// while vote (SaveOptions.VoteBefore): one that has just overtaken its
// submit_sm_resp could find another message in a wrong form.
func (t *changeTxn) vote(hits [nSchemes]bool, old uint8) uint8 {
	v := uint8(earlyVoted)
	for sc := schemeExact; sc < nSchemes; sc++ {
		if old&earlyVoted != 0 {
			if old&(1<<sc) != 0 {
				t.m.hits[sc]--
			} else {
				t.m.misses[sc]--
			}
		}
		if hits[sc] {
			t.m.hits[sc]++
			v |= 1 << sc
		} else {
			t.m.misses[sc]++
		}
	}
	t.m.dirty = true
	for sc := schemeExact; sc < nSchemes; sc++ {
		if t.m.hits[sc] < learnHits || t.m.misses[sc]*10 > t.m.hits[sc] {
			continue
		}
		clear := true
		for o := schemeExact; o < nSchemes; o++ {
			if o != sc && (t.m.misses[o] < learnMisses+3*t.m.misses[sc] || 2*t.m.misses[o] < t.m.hits[o]) {
				clear = false
			}
		}
		if clear {
			t.m.learned = sc
			t.res.Learned = sc.String()
			break
		}
	}
	return v
}

// state is the state of bid/idx as this transaction sees it.
func (t *changeTxn) state(bid uint64, idx uint32) (*msgState, error) {
	if t.m.cur != nil && t.m.curBid == bid && t.m.curIdx == idx {
		return t.m.cur, nil
	}
	return getMessageState(t.txn, bid, idx)
}

// live: the part still has this id (a message submitted again gets new ids).
func live(s *msgState, part int, id string) bool {
	return part < len(s.SMSCIDs) && campaignd.CanonicalID(s.SMSCIDs[part]) == id
}

func awaiting(s *msgState, part int) bool {
	return s.State == campaignd.StateSubmitted && part < len(s.Parts) && s.Parts[part] == ""
}

func (t *changeTxn) entries(id string) ([]target, error) {
	v, err := t.txn.Get(earlyKey(prefixMatch, id))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if len(v) == 0 || len(v)%14 != 0 {
		return nil, errCorrupt
	}
	var out []target
	for ; len(v) > 0; v = v[14:] {
		out = append(out, target{binary.BigEndian.Uint64(v), binary.BigEndian.Uint32(v[8:]), int(binary.BigEndian.Uint16(v[12:]))})
	}
	return out, nil
}

// recordIDs writes mi/ for each part id, detecting collisions, and applies
// receipts held for them; the message may settle here. s is changed in
// place (not yet written).
func (t *changeTxn) recordIDs(bid uint64, idx uint32, s *msgState) error {
	t.m.cur, t.m.curBid, t.m.curIdx = s, bid, idx
	defer func() { t.m.cur = nil }()
	for part := range s.SMSCIDs {
		id := campaignd.CanonicalID(s.SMSCIDs[part])
		if id == "" {
			continue
		}
		if err := t.index(id, target{bid, idx, part}); err != nil {
			return err
		}
	}
	scs, err := t.schemes()
	if err != nil {
		return err
	}
	for part := range s.SMSCIDs {
		id := campaignd.CanonicalID(s.SMSCIDs[part])
		if id == "" {
			continue
		}
		for _, sc := range scs {
			rid, ok := receiptForm(sc, id)
			if !ok {
				continue
			}
			r, held, err := getEarly(t.txn, rid)
			if err != nil {
				return err
			} else if held {
				if _, err := t.resolve(&r, true, false); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// index adds self under mi/id, keeping the parts that still await a receipt
// for that id.
func (t *changeTxn) index(id string, self target) error {
	old, err := t.entries(id)
	if err != nil {
		return err
	}
	v := make([]byte, 0, 14*(len(old)+1))
	for _, e := range old {
		if e == self {
			continue
		}
		es, err := t.state(e.bid, e.idx)
		if err != nil {
			return err
		}
		if !live(es, e.part, id) || !awaiting(es, e.part) {
			continue // settled or submitted again: it needs no receipt under this id
		}
		v = appendTarget(v, e)
		t.res.Collisions = append(t.res.Collisions, campaignd.Collision{ID: id, OldBroadcast: e.bid, OldIndex: e.idx, OldPart: e.part,
			NewBroadcast: self.bid, NewIndex: self.idx, NewPart: self.part})
	}
	v = appendTarget(v, self)
	if t.o.MatchTTL > 0 {
		return t.txn.SetTTL(earlyKey(prefixMatch, id), v, t.o.MatchTTL)
	}
	return t.txn.Set(earlyKey(prefixMatch, id), v)
}

func appendTarget(v []byte, e target) []byte {
	v = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(v, e.bid), e.idx)
	return binary.BigEndian.AppendUint16(v, uint16(e.part))
}

type lookupKind int

const (
	foundNone lookupKind = iota
	foundOne
	foundSeveral // in different forms: ambiguous until the scheme is known
	foundShared  // one id given to several awaiting parts: never resolvable
)

type found struct {
	kind  lookupKind
	tg    target
	s     *msgState
	forms int            // how many distinct forms the receipt id has
	hits  [nSchemes]bool // the schemes whose form finds a part
}

// lookup finds the part a receipt id belongs to in the allowed forms.
// Parts whose receipt already came count too, so a repeated receipt is
// never taken for another message's.
func (t *changeTxn) lookup(id string) (found, error) {
	var f found
	scs, err := t.schemes()
	if err != nil {
		return f, err
	}
	var keys [nSchemes]string
	shared := false
outer:
	for _, sc := range scs {
		key, ok := submitForm(sc, id)
		if !ok {
			continue
		}
		keys[sc] = key
		for o := range nSchemes {
			if scheme(o) != sc && keys[o] == key { // e.g. "7": the same in every form
				f.hits[sc] = f.hits[o]
				continue outer
			}
		}
		f.forms++
		ents, err := t.entries(key)
		if err != nil {
			return f, err
		}
		n := 0
		for _, e := range ents {
			s, err := t.state(e.bid, e.idx)
			if err != nil {
				return f, err
			}
			if !live(s, e.part, key) {
				continue
			}
			f.hits[sc] = true
			if n++; n > 1 {
				shared = true
				continue
			}
			switch {
			case f.kind == foundNone:
				f.kind, f.tg, f.s = foundOne, e, s
			case f.tg != e:
				f.kind = foundSeveral
			}
		}
	}
	if shared {
		f.kind = foundSeveral
		if f.forms == 1 {
			f.kind = foundShared
		}
	}
	return f, nil
}

// receipt applies one incoming receipt.
func (t *changeTxn) receipt(r *receiptIn) (string, error) {
	r.ID = campaignd.CanonicalID(r.ID)
	_, held, err := getEarly(t.txn, r.ID)
	if err != nil {
		return "", err
	}
	if held {
		return campaignd.ReceiptDuplicate, nil
	}
	return t.resolve(r, false, false)
}

// resolve applies r if it can be told apart, else holds it under mr/ (or
// drops it when its id is shared). held says it is under mr/ already; vote
// lets it vote for a scheme (see vote).
func (t *changeTxn) resolve(r *receiptIn, held, vote bool) (string, error) {
	f, err := t.lookup(r.ID)
	if err != nil {
		return "", err
	}
	votedNow := false
	hold := func(outcome string) (string, error) {
		if held && !votedNow {
			return outcome, nil
		}
		return outcome, putEarly(t.txn, r)
	}
	if f.forms > 1 { // auto, before it has learned the scheme
		if f.kind == foundNone {
			return hold(campaignd.ReceiptEarly)
		}
		if vote {
			if v := t.vote(f.hits, r.vote); v != r.vote {
				r.vote, votedNow = v, true
			}
		}
		if t.m.learned == schemeNone {
			// Long after the receipt came (every earlier submit_sm_resp is
			// recorded), one part found, by the id exactly as the SMSC gave
			// it, and nothing in any other form: its own. A part found only
			// by a conversion stays held: the receipt may be for an id
			// resubmitted since, and a conversion would be a guess.
			if !(held && f.kind == foundOne && f.hits[schemeExact] && r.At.Before(t.o.SettleBefore)) {
				return hold(campaignd.ReceiptHeld)
			}
		} else if f, err = t.lookup(r.ID); err != nil { // in the learned form only
			return "", err
		}
	}
	switch f.kind {
	case foundNone:
		return hold(campaignd.ReceiptEarly)
	case foundSeveral:
		return hold(campaignd.ReceiptHeld)
	case foundShared:
		if held { // counted here: the caller of a fresh receipt counts its outcome
			t.res.Unmatched++
			return campaignd.ReceiptUnmatched, t.txn.Delete(earlyKey(prefixEarly, r.ID))
		}
		return campaignd.ReceiptUnmatched, nil
	}
	if held {
		if err := t.txn.Delete(earlyKey(prefixEarly, r.ID)); err != nil {
			return "", err
		}
	}
	if !awaiting(f.s, f.tg.part) {
		return campaignd.ReceiptDuplicate, nil
	}
	return campaignd.ReceiptMatched, t.apply(f.tg, f.s, r)
}

// apply gives part tg its receipt's status and writes the message.
func (t *changeTxn) apply(tg target, s *msgState, r *receiptIn) error {
	s.Parts[tg.part] = r.Stat
	if s == t.m.cur {
		settle(s, r.At) // change() writes and counts it
		return nil
	}
	if settle(s, r.At) {
		t.move(tg.bid, campaignd.StateSubmitted, s.State)
		t.res.Settled = append(t.res.Settled, campaignd.Settled{BroadcastID: tg.bid, Index: tg.idx, State: s.State})
	}
	return t.put(tg.bid, tg.idx, s)
}

// resolveHeld looks again at up to max held receipts from key from on, and
// returns where to go on (nil at the end). Before auto has learned the
// scheme, those received before voteBefore vote.
func (t *changeTxn) resolveHeld(from []byte, max int, voteBefore time.Time) ([]byte, error) {
	if _, err := t.schemes(); err != nil {
		return nil, err
	}
	var rs []receiptIn
	var next []byte
	// Read first, resolved after: the scan is over before resolve writes.
	err := t.txn.Scan(ScanOptions{Prefix: prefixEarly, Start: from}, func(k, v []byte) (bool, error) {
		if len(rs) == max {
			next = k
			return false, nil
		}
		var r receiptIn
		if err := decodeEarly(string(k[len(prefixEarly):]), v, &r); err != nil {
			return false, err
		}
		rs = append(rs, r)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	for i := range rs {
		if _, err := t.resolve(&rs[i], true, rs[i].At.Before(voteBefore)); err != nil {
			return nil, err
		}
	}
	return next, nil
}

// Held receipt value: received (ms, 8 bytes), an optional vote byte (below
// 0x20, so older values without it still read: earlyVoted | hits<<1, see
// vote), the stat.
const earlyVoted = 0x01

func putEarly(txn Txn, r *receiptIn) error {
	v := binary.BigEndian.AppendUint64(nil, uint64(r.At.UnixMilli()))
	v = append(v, r.vote) // below 0x20
	return txn.Set(earlyKey(prefixEarly, r.ID), append(v, r.Stat...))
}

func decodeEarly(id string, v []byte, r *receiptIn) error {
	if len(v) < 8 {
		return errCorrupt
	}
	*r = receiptIn{ReceiptIn: campaignd.ReceiptIn{ID: id, At: time.UnixMilli(int64(binary.BigEndian.Uint64(v)))}}
	v = v[8:]
	if len(v) > 0 && v[0] < 0x20 {
		r.vote = v[0]
		v = v[1:]
	}
	r.Stat = campaignd.MessageState(v)
	return nil
}

func getEarly(txn Txn, id string) (receiptIn, bool, error) {
	v, err := txn.Get(earlyKey(prefixEarly, id))
	if errors.Is(err, ErrNotFound) {
		return receiptIn{}, false, nil
	} else if err != nil {
		return receiptIn{}, false, err
	}
	var r receiptIn
	err = decodeEarly(id, v, &r)
	return r, err == nil, err
}

// IDScheme returns the scheme auto has learned ("" when none yet).
func (db *DB) IDScheme() (string, error) {
	var sc scheme
	err := db.kv.View(func(txn Txn) error {
		t := &changeTxn{txn: txn}
		err := t.loadScheme()
		sc = t.m.learned
		return err
	})
	return sc.String(), err
}
