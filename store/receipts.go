package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"campaignd"
)

// Receipt matching keys:
//
//	mi/<smsc id>  -> bid, index, part       written with the submitted state, in the same transaction
//	mr/<smsc id>  -> received, done, stat   a receipt that came before its submit_sm_resp
//
// An mi/ key lives MatchTTL (the receipt timeout plus a margin): after that no
// receipt is expected. An mr/ key is applied and removed when its id is
// recorded, or dropped as unmatched by ExpireEarlyReceipts.
var (
	prefixMatch = []byte("mi/")
	prefixEarly = []byte("mr/")
)

// resolveBatch bounds the held receipts one SaveChanges looks at again.
const resolveBatch = 500

// receiptIn is a receipt being applied, with its vote while auto learns.
type receiptIn struct {
	campaignd.ReceiptIn
	vote uint8 // held under mr/ after voting for an id scheme: earlyVoted | hits<<1
}

// SaveChanges applies the engine's changes and then the receipts in one
// transaction, with the broadcasts' counts. A change to submitted records
// its ids under mi/ and applies receipts held under mr/ for them, so a
// message is always submitted before a receipt settles it. It is the
// engine's batched write: callers group hundreds of changes per call.
func (db *DB) SaveChanges(cs []campaignd.Change, rs []campaignd.ReceiptIn, o campaignd.SaveOptions) (*campaignd.ChangeResult, error) {
	var res *campaignd.ChangeResult
	err := db.kv.Update(func(txn Txn) error {
		res = &campaignd.ChangeResult{Applied: make([]bool, len(cs)), Receipts: make([]string, len(rs))}
		t := &changeTxn{db: db, txn: txn, o: o, res: res, deltas: map[uint64]*campaignd.Counts{}, bases: map[uint64]uint64{}}
		if err := t.prefetch(cs, rs); err != nil {
			return err
		}
		for i := range cs {
			ok, err := t.change(&cs[i])
			if err != nil {
				return err
			}
			res.Applied[i] = ok
		}
		for i := range rs {
			out, err := t.receipt(&receiptIn{ReceiptIn: rs[i]})
			if err != nil {
				return err
			}
			res.Receipts[i] = out
		}
		if o.ResolveHeld {
			var err error
			if res.ResolveNext, err = t.resolveHeld(o.ResolveFrom, resolveBatch, o.VoteBefore); err != nil {
				return err
			}
		}
		if o.IDFormat == "" || o.IDFormat == campaignd.IDFormatAuto {
			if err := t.loadScheme(); err != nil {
				return err
			}
			res.Scheme = t.m.learned.String()
		}
		if err := t.saveScheme(); err != nil {
			return err
		}
		return t.flushCounts()
	})
	if err != nil {
		return nil, fmt.Errorf("store: save %d changes, %d receipts: %w", len(cs), len(rs), err)
	}
	return res, nil
}

type changeTxn struct {
	db     *DB
	txn    Txn
	o      campaignd.SaveOptions
	res    *campaignd.ChangeResult
	deltas map[uint64]*campaignd.Counts
	bases  map[uint64]uint64 // tracking bases
	m      matchState
}

func (t *changeTxn) move(bid uint64, from, to campaignd.MessageState) {
	d := t.deltas[bid]
	if d == nil {
		d = new(campaignd.Counts)
		t.deltas[bid] = d
	}
	d.Add(from, to)
}

func (t *changeTxn) flushCounts() error {
	for bid, d := range t.deltas {
		t.res.Touched = append(t.res.Touched, bid)
		if err := addCountsTxn(t.txn, bid, d); err != nil {
			return err
		}
	}
	return nil
}

// put writes the state of message bid/idx, indexing it by settle day when
// final.
func (t *changeTxn) put(bid uint64, idx uint32, s *msgState) error {
	base, err := t.db.trackingBase(t.txn, bid)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	m := &campaignd.Message{BroadcastID: bid, Index: idx, TrackingID: base + uint64(idx)}
	s.apply(m)
	day := ""
	if m.State.Final() && t.o.DayOf != nil {
		day = t.o.DayOf(m.SettledAt)
	}
	return putMessageState(t.txn, m, day)
}

func (t *changeTxn) change(c *campaignd.Change) (bool, error) {
	s, err := getMessageState(t.txn, c.BroadcastID, c.Index)
	if err != nil {
		return false, err
	}
	if !c.Applies(s.State) {
		return false, nil
	}
	s.State = c.To
	if c.Attempts > 0 {
		s.Attempts = c.Attempts
	}
	if c.ErrorCode != 0 {
		s.ErrorCode = c.ErrorCode
	}
	switch {
	case c.To == campaignd.StateSubmitted:
		s.SMSCIDs = c.SMSCIDs
		s.Parts = make([]campaignd.MessageState, len(c.SMSCIDs))
		s.SubmittedAt = timeToMS(c.At)
		if err := t.recordIDs(c.BroadcastID, c.Index, s); err != nil {
			return false, err
		}
	case c.To.Final():
		if c.From == campaignd.StateSubmitted {
			// A receipt timeout: parts without a receipt count as UNKNOWN.
			s.State = campaignd.SettleSubmitted(s.Parts, c.To)
		}
		s.SettledAt = timeToMS(c.At)
	}
	if err := t.put(c.BroadcastID, c.Index, s); err != nil {
		return false, err
	}
	t.move(c.BroadcastID, c.From, s.State)
	if s.State.Final() || s.State == campaignd.StateCancelled {
		t.res.Settled = append(t.res.Settled, campaignd.Settled{BroadcastID: c.BroadcastID, Index: c.Index, State: s.State})
	}
	return true, nil
}

// settle makes s final as the worst of its parts once every part has a
// receipt, and reports whether it did.
func settle(s *msgState, at time.Time) bool {
	state, ok := campaignd.SettleParts(s.Parts)
	if !ok {
		return false
	}
	s.State, s.SettledAt = state, timeToMS(at)
	return true
}

func earlyKey(prefix []byte, id string) []byte {
	return append(append(make([]byte, 0, len(prefix)+len(id)), prefix...), id...)
}

// ExpireEarlyReceipts drops receipts held under mr/ since before `before`
// (never matched), and returns how many it dropped and when the oldest one
// left was received (zero if none is left).
func (db *DB) ExpireEarlyReceipts(before time.Time) (dropped int, oldest time.Time, err error) {
	var old [][]byte
	err = db.kv.View(func(txn Txn) error {
		old, oldest = nil, time.Time{}
		return txn.Scan(ScanOptions{Prefix: prefixEarly}, func(k, v []byte) (bool, error) {
			var at time.Time
			if len(v) >= 8 {
				at = time.UnixMilli(int64(binary.BigEndian.Uint64(v)))
			}
			if at.Before(before) {
				old = append(old, k)
			} else if oldest.IsZero() || at.Before(oldest) {
				oldest = at
			}
			return true, nil
		})
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("store: scan early receipts: %w", err)
	}
	for len(old) > 0 {
		n := min(len(old), 1000)
		err := db.kv.Update(func(txn Txn) error {
			for _, k := range old[:n] {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return dropped, oldest, fmt.Errorf("store: drop early receipts: %w", err)
		}
		dropped += n
		old = old[n:]
	}
	return dropped, oldest, nil
}

// submittedMark finds submitted states in JSON values (written before the
// binary form) without decoding every value.
var submittedMark = []byte(`"s":"submitted"`)

func containsMark(v []byte) bool { return bytes.Contains(v, submittedMark) }

// SubmittedBefore calls fn with the index of every message of broadcast bid
// still awaiting receipts that was submitted before `before`, and returns
// when the earliest of the others was submitted (zero if none).
func (db *DB) SubmittedBefore(bid uint64, before time.Time, fn func(idx uint32) error) (time.Time, error) {
	var oldest time.Time
	prefix := append(key(prefixMsgState, bid), '/')
	err := db.kv.View(func(txn Txn) error {
		return txn.Scan(ScanOptions{Prefix: prefix}, func(k, v []byte) (bool, error) {
			if !isSubmitted(v) {
				return true, nil
			}
			var s msgState
			if err := s.decode(v); err != nil {
				return false, err
			}
			if s.State != campaignd.StateSubmitted {
				return true, nil
			}
			idx := binary.BigEndian.Uint32(k[len(k)-4:])
			at := msToTime(s.SubmittedAt)
			if at.Before(before) {
				if err := fn(idx); err != nil {
					return false, err
				}
			} else if oldest.IsZero() || at.Before(oldest) {
				oldest = at
			}
			return true, nil
		})
	})
	if err != nil && !errors.Is(err, campaignd.ErrStop) {
		return time.Time{}, fmt.Errorf("store: submitted messages of broadcast %d: %w", bid, err)
	}
	return oldest, nil
}

// prefetcher is a Txn that can read many keys in one round trip (PostgreSQL).
type prefetcher interface{ Prefetch(keys [][]byte) error }

// prefetch reads, in two round trips, the keys SaveChanges will Get: the
// messages' states, their ids' mi/ and mr/ entries, the receipts' mr/ and mi/
// entries, then the states of the messages those mi/ entries name.
func (t *changeTxn) prefetch(cs []campaignd.Change, rs []campaignd.ReceiptIn) error {
	p, ok := t.txn.(prefetcher)
	if !ok {
		return nil
	}
	scs, err := t.schemes()
	if err != nil {
		return err
	}
	var keys, match [][]byte
	for i := range cs {
		c := &cs[i]
		keys = append(keys, msgStateKey(c.BroadcastID, c.Index))
		if c.To != campaignd.StateSubmitted {
			continue
		}
		for _, sid := range c.SMSCIDs {
			id := campaignd.CanonicalID(sid)
			if id == "" {
				continue
			}
			keys = append(keys, earlyKey(prefixMatch, id))
			for _, sc := range scs {
				if rid, ok := receiptForm(sc, id); ok {
					keys = append(keys, earlyKey(prefixEarly, rid))
				}
			}
		}
	}
	for i := range rs {
		id := campaignd.CanonicalID(rs[i].ID)
		keys = append(keys, earlyKey(prefixEarly, id))
		for _, sc := range scs {
			if k, ok := submitForm(sc, id); ok {
				mk := earlyKey(prefixMatch, k)
				keys, match = append(keys, mk), append(match, mk)
			}
		}
	}
	if err := p.Prefetch(keys); err != nil {
		return err
	}
	var states [][]byte
	for _, mk := range match {
		ents, err := t.entries(string(mk[len(prefixMatch):]))
		if err != nil {
			return err
		}
		for _, e := range ents {
			states = append(states, msgStateKey(e.bid, e.idx))
		}
	}
	return p.Prefetch(states)
}
