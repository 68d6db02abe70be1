package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"campaignd"
)

// Hot records: the values the engine writes for every message are a compact
// binary form with a version byte, not JSON.
//
//	ms/<bid>/<index>  msgState: 0x01, state, attempts, error code, submitted and
//	                  settled (unix ms), part ids, part states
//	bc/<bid>          a broadcast's message counts: 0x01, queued, submitted,
//	                  delivered, failed, unknown, cancelled
//
// A JSON value (a store written before this form) starts with '{' and is
// still read; it is rewritten in the binary form when it next changes. The
// counts of b/<bid> (JSON) are stale once bc/<bid> exists: readers take the
// seven message counts from bc/, which the engine updates in the same
// transaction as the state changes it counts.
var prefixCounts = []byte("bc/")

const hotV1 = 1

// stateCodes numbers the message states for the binary form; code 0 is the
// empty state (a part without a receipt), stateOther a state spelt out.
var stateCodes = [...]campaignd.MessageState{"", campaignd.StateQueued, campaignd.StateSubmitted,
	campaignd.StateCancelled, campaignd.StateDelivered, campaignd.StateUndeliverable, campaignd.StateExpired,
	campaignd.StateDeleted, campaignd.StateRejected, campaignd.StateAccepted, campaignd.StateUnknown,
	campaignd.StateSuppressed}

const stateOther = 0xff

var codeSubmitted = stateCode(campaignd.StateSubmitted)

func stateCode(s campaignd.MessageState) byte {
	for i, c := range stateCodes {
		if c == s {
			return byte(i)
		}
	}
	return stateOther
}

func appendState(b []byte, s campaignd.MessageState) []byte {
	c := stateCode(s)
	b = append(b, c)
	if c == stateOther {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func readState(b []byte) (campaignd.MessageState, []byte, error) {
	if len(b) < 1 {
		return "", nil, errCorrupt
	}
	c, b := b[0], b[1:]
	if int(c) < len(stateCodes) {
		return stateCodes[c], b, nil
	}
	if c != stateOther {
		return "", nil, errCorrupt
	}
	s, b, err := readString(b)
	return campaignd.MessageState(s), b, err
}

func readString(b []byte) (string, []byte, error) {
	l, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < l {
		return "", nil, errCorrupt
	}
	return string(b[n : n+int(l)]), b[n+int(l):], nil
}

func readUvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, errCorrupt
	}
	return v, b[n:], nil
}

func readVarint(b []byte) (int64, []byte, error) {
	v, n := binary.Varint(b)
	if n <= 0 {
		return 0, nil, errCorrupt
	}
	return v, b[n:], nil
}

// appendBinary appends s in the binary form.
func (s *msgState) appendBinary(b []byte) []byte {
	b = append(b, hotV1)
	b = appendState(b, s.State)
	b = binary.AppendUvarint(b, uint64(s.Attempts))
	b = binary.AppendUvarint(b, uint64(s.ErrorCode))
	b = binary.AppendVarint(b, s.SubmittedAt)
	b = binary.AppendVarint(b, s.SettledAt)
	b = binary.AppendUvarint(b, uint64(len(s.SMSCIDs)))
	for _, id := range s.SMSCIDs {
		b = binary.AppendUvarint(b, uint64(len(id)))
		b = append(b, id...)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Parts)))
	for _, p := range s.Parts {
		b = appendState(b, p)
	}
	return b
}

// decode reads a value of ms/: the binary form or the older JSON.
func (s *msgState) decode(v []byte) error {
	if len(v) == 0 {
		return errCorrupt
	}
	if v[0] == '{' {
		return json.Unmarshal(v, s)
	}
	if v[0] != hotV1 {
		return fmt.Errorf("%w: message state version %d", errCorrupt, v[0])
	}
	*s = msgState{}
	b := v[1:]
	var err error
	var u uint64
	if s.State, b, err = readState(b); err != nil {
		return err
	}
	if u, b, err = readUvarint(b); err != nil {
		return err
	}
	s.Attempts = int(u)
	if u, b, err = readUvarint(b); err != nil {
		return err
	}
	s.ErrorCode = uint32(u)
	if s.SubmittedAt, b, err = readVarint(b); err != nil {
		return err
	}
	if s.SettledAt, b, err = readVarint(b); err != nil {
		return err
	}
	if u, b, err = readUvarint(b); err != nil || u > uint64(len(b)) {
		return errCorrupt
	}
	if u > 0 {
		s.SMSCIDs = make([]string, u)
		for i := range s.SMSCIDs {
			if s.SMSCIDs[i], b, err = readString(b); err != nil {
				return err
			}
		}
	}
	if u, b, err = readUvarint(b); err != nil || u > uint64(len(b)) {
		return errCorrupt
	}
	if u > 0 {
		s.Parts = make([]campaignd.MessageState, u)
		for i := range s.Parts {
			if s.Parts[i], b, err = readState(b); err != nil {
				return err
			}
		}
	}
	if len(b) != 0 {
		return errCorrupt
	}
	return nil
}

// isSubmitted tells from a value of ms/ whether the message awaits
// receipts, decoding only what it must.
func isSubmitted(v []byte) bool {
	if len(v) >= 2 && v[0] == hotV1 {
		return v[1] == codeSubmitted
	}
	return len(v) > 0 && v[0] == '{' && containsMark(v)
}

func countsKey(bid uint64) []byte { return key(prefixCounts, bid) }

func appendCounts(b []byte, c *campaignd.Counts) []byte {
	b = append(b, hotV1)
	for _, n := range [...]int64{c.Queued, c.Submitted, c.Delivered, c.Failed, c.Unknown, c.Cancelled, c.Suppressed} {
		b = binary.AppendVarint(b, n)
	}
	return b
}

// decodeCounts sets the message counts of c from a value of bc/.
func decodeCounts(v []byte, c *campaignd.Counts) error {
	if len(v) == 0 || v[0] != hotV1 {
		return fmt.Errorf("%w: counts", errCorrupt)
	}
	b := v[1:]
	var err error
	for _, p := range [...]*int64{&c.Queued, &c.Submitted, &c.Delivered, &c.Failed, &c.Unknown, &c.Cancelled, &c.Suppressed} {
		if len(b) == 0 && p == &c.Suppressed {
			return nil // written before messages could be suppressed
		}
		if *p, b, err = readVarint(b); err != nil {
			return err
		}
	}
	return nil
}

// overlayCounts replaces b's message counts with those of bc/ when it
// exists.
func overlayCounts(txn Txn, b *campaignd.Broadcast) error {
	v, err := txn.Get(countsKey(b.ID))
	if errors.Is(err, ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	return decodeCounts(v, &b.Counts)
}

func putCounts(txn Txn, bid uint64, c *campaignd.Counts) error {
	return txn.Set(countsKey(bid), appendCounts(make([]byte, 0, 32), c))
}

// sameMessageCounts compares the counts bc/ holds.
func sameMessageCounts(a, b *campaignd.Counts) bool {
	return a.Queued == b.Queued && a.Submitted == b.Submitted && a.Delivered == b.Delivered &&
		a.Failed == b.Failed && a.Unknown == b.Unknown && a.Cancelled == b.Cancelled && a.Suppressed == b.Suppressed
}

// addCountsTxn adds d to broadcast bid's message counts inside txn. The
// first time (a store written before bc/ existed) the counts are taken from
// the broadcast record. A deleted broadcast is left alone.
func addCountsTxn(txn Txn, bid uint64, d *campaignd.Counts) error {
	var c campaignd.Counts
	v, err := txn.Get(countsKey(bid))
	switch {
	case errors.Is(err, ErrNotFound):
		b := new(campaignd.Broadcast)
		if err := getJSON(txn, key(prefixBroadcast, bid), b); errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		c = b.Counts
	case err != nil:
		return err
	default:
		if err := decodeCounts(v, &c); err != nil {
			return err
		}
	}
	addCounts(&c, d)
	return putCounts(txn, bid, &c)
}

// TrackingBase returns the Tracking ID of message 0 of broadcast bid. It is
// fixed when the broadcast is stored, so it is cached.
func (db *DB) TrackingBase(bid uint64) (uint64, error) {
	var base uint64
	err := db.kv.View(func(txn Txn) error {
		var err error
		base, err = db.trackingBase(txn, bid)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return 0, notFound("Broadcast", bid)
	} else if err != nil {
		return 0, fmt.Errorf("store: broadcast %d: %w", bid, err)
	}
	return base, nil
}

// trackingBase is TrackingBase inside txn; ErrNotFound when the
// broadcast does not exist.
func (db *DB) trackingBase(txn Txn, bid uint64) (uint64, error) {
	if v, ok := db.bases.Load(bid); ok {
		return v.(uint64), nil
	}
	b := new(campaignd.Broadcast)
	if err := getJSON(txn, key(prefixBroadcast, bid), b); err != nil {
		return 0, err
	}
	db.bases.Store(bid, b.TrackingBase)
	return b.TrackingBase, nil
}
