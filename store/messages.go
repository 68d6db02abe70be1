package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"campaignd"
)

// prefixSettled indexes messages by the local day their final status was
// set: d/<YYYYMMDD>/<tracking id> -> bid, index. The daily report reads it in
// Tracking ID order.
var prefixSettled = []byte("d/")

// msgState is the value of ms/<bid>/<index>. A message without one is queued.
type msgState struct {
	State       campaignd.MessageState   `json:"s"`
	Attempts    int                      `json:"a,omitempty"`
	ErrorCode   uint32                   `json:"e,omitempty"`
	SMSCIDs     []string                 `json:"ids,omitempty"`
	Parts       []campaignd.MessageState `json:"p,omitempty"`
	SubmittedAt int64                    `json:"sub,omitempty"` // unix ms
	SettledAt   int64                    `json:"set,omitempty"` // unix ms
}

func msgStateKey(bid uint64, idx uint32) []byte {
	return binary.BigEndian.AppendUint32(append(key(prefixMsgState, bid), '/'), idx)
}

func (s *msgState) apply(m *campaignd.Message) {
	m.State, m.Attempts, m.ErrorCode = s.State, s.Attempts, s.ErrorCode
	m.SMSCIDs, m.Parts = s.SMSCIDs, s.Parts
	m.SubmittedAt, m.SettledAt = msToTime(s.SubmittedAt), msToTime(s.SettledAt)
}

func stateOf(m *campaignd.Message) *msgState {
	return &msgState{State: m.State, Attempts: m.Attempts, ErrorCode: m.ErrorCode, SMSCIDs: m.SMSCIDs,
		Parts: m.Parts, SubmittedAt: timeToMS(m.SubmittedAt), SettledAt: timeToMS(m.SettledAt)}
}

func msToTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func timeToMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// putMessageState writes m's state inside txn; when m is settled it is also
// indexed under day (YYYYMMDD, local) for the daily report.
func putMessageState(txn Txn, m *campaignd.Message, day string) error {
	if err := txn.Set(msgStateKey(m.BroadcastID, m.Index), stateOf(m).appendBinary(nil)); err != nil {
		return err
	}
	if day != "" && m.State.Final() {
		return txn.Set(settledKey(day, m.TrackingID), binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, m.BroadcastID), m.Index))
	}
	return nil
}

func settledKey(day string, tracking uint64) []byte {
	k := append(append([]byte{}, prefixSettled...), day...)
	return binary.BigEndian.AppendUint64(append(k, '/'), tracking)
}

func getMessageState(txn Txn, bid uint64, idx uint32) (*msgState, error) {
	v, err := txn.Get(msgStateKey(bid, idx))
	if errors.Is(err, ErrNotFound) {
		return &msgState{State: campaignd.StateQueued}, nil
	} else if err != nil {
		return nil, err
	}
	s := new(msgState)
	return s, s.decode(v)
}

// Message returns message idx of broadcast bid with its state.
func (db *DB) Message(bid uint64, idx uint32) (*campaignd.Message, error) {
	base, err := db.TrackingBase(bid)
	if err != nil {
		return nil, err
	}
	return db.message(db.NewRowReader(), base, bid, idx)
}

func (db *DB) message(rr *RowReader, base, bid uint64, idx uint32) (*campaignd.Message, error) {
	row, err := rr.Row(bid, idx)
	if err != nil {
		return nil, err
	}
	m := &campaignd.Message{Row: *row, BroadcastID: bid, Index: idx, TrackingID: base + uint64(idx)}
	err = db.kv.View(func(txn Txn) error {
		s, err := getMessageState(txn, bid, idx)
		if err != nil {
			return err
		}
		s.apply(m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: message %d/%d: %w", bid, idx, err)
	}
	return m, nil
}

// Messages calls fn with each message of broadcast bid from index from on,
// with its state, in order, streaming. ErrStop from fn ends it quietly.
func (db *DB) Messages(bid uint64, from uint32, fn func(*campaignd.Message) error) error {
	base, err := db.TrackingBase(bid)
	if err != nil {
		return err
	}
	states := db.newStateCursor(bid)
	return db.Rows(bid, from, func(idx uint32, r *campaignd.Row) error {
		m := &campaignd.Message{Row: *r, BroadcastID: bid, Index: idx, TrackingID: base + uint64(idx), State: campaignd.StateQueued}
		v, err := states.at(idx)
		if err != nil {
			return err
		}
		if v != nil {
			s := new(msgState)
			if err := s.decode(v); err != nil {
				return err
			}
			s.apply(m)
		}
		return fn(m)
	})
}

// statePage is how many message states a stateCursor reads at a time.
const statePage = 256

// stateCursor reads the message states (ms/) of one broadcast in index
// order, a page at a time, each page in a read transaction of its own: a
// walk over rows asks it for each row's state instead of a lookup per
// message, and no scan is held open inside another.
type stateCursor struct {
	db    *DB
	bid   uint64
	next  uint32 // the first index not read yet
	done  bool   // no state at next or after
	asked uint32 // the index of the last call
	idx   []uint32
	vals  [][]byte
}

func (db *DB) newStateCursor(bid uint64) *stateCursor { return &stateCursor{db: db, bid: bid} }

// at returns the ms/ value of message idx, nil when it has none (queued).
// Reading in index order costs a transaction per statePage states; an idx
// lower than the one before starts again.
func (c *stateCursor) at(idx uint32) ([]byte, error) {
	if idx < c.asked {
		*c = stateCursor{db: c.db, bid: c.bid}
	}
	c.asked = idx
	for {
		for len(c.idx) > 0 && c.idx[0] < idx {
			c.idx, c.vals = c.idx[1:], c.vals[1:]
		}
		if len(c.idx) > 0 {
			if c.idx[0] == idx {
				return c.vals[0], nil
			}
			return nil, nil
		}
		// None in [idx, next): it would be buffered.
		if c.done || idx < c.next {
			return nil, nil
		}
		if err := c.fill(idx); err != nil {
			return nil, err
		}
	}
}

func (c *stateCursor) fill(from uint32) error {
	c.idx, c.vals = c.idx[:0], c.vals[:0]
	prefix := append(key(prefixMsgState, c.bid), '/')
	err := c.db.kv.View(func(txn Txn) error {
		return txn.Scan(ScanOptions{Prefix: prefix, Start: msgStateKey(c.bid, from)}, func(k, v []byte) (bool, error) {
			c.idx = append(c.idx, binary.BigEndian.Uint32(k[len(k)-4:]))
			c.vals = append(c.vals, v)
			return len(c.idx) < statePage, nil
		})
	})
	if err != nil {
		return err
	}
	n := len(c.idx)
	c.done = n < statePage || c.idx[n-1] == ^uint32(0)
	if !c.done {
		c.next = c.idx[n-1] + 1
	}
	return nil
}

func addCounts(c, d *campaignd.Counts) {
	c.Queued += d.Queued
	c.Submitted += d.Submitted
	c.Delivered += d.Delivered
	c.Failed += d.Failed
	c.Unknown += d.Unknown
	c.Cancelled += d.Cancelled
	c.Suppressed += d.Suppressed
}
