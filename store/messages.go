package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

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
func putMessageState(txn *badger.Txn, m *campaignd.Message, day string) error {
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

func getMessageState(txn *badger.Txn, bid uint64, idx uint32) (*msgState, error) {
	item, err := txn.Get(msgStateKey(bid, idx))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return &msgState{State: campaignd.StateQueued}, nil
	} else if err != nil {
		return nil, err
	}
	s := new(msgState)
	return s, item.Value(func(v []byte) error { return s.decode(v) })
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
	err = db.db.View(func(txn *badger.Txn) error {
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
	return db.db.View(func(txn *badger.Txn) error {
		prefix := append(key(prefixMsgState, bid), '/')
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefix
		it := txn.NewIterator(opts)
		defer it.Close()
		it.Seek(msgStateKey(bid, from))
		return db.Rows(bid, from, func(idx uint32, r *campaignd.Row) error {
			m := &campaignd.Message{Row: *r, BroadcastID: bid, Index: idx, TrackingID: base + uint64(idx), State: campaignd.StateQueued}
			for it.ValidForPrefix(prefix) {
				k := it.Item().Key()
				sidx := binary.BigEndian.Uint32(k[len(k)-4:])
				if sidx > idx {
					break
				}
				if sidx == idx {
					s := new(msgState)
					if err := it.Item().Value(s.decode); err != nil {
						return err
					}
					s.apply(m)
				}
				it.Next()
			}
			return fn(m)
		})
	})
}

// SaveMessages writes the states of ms in one transaction, updating each
// broadcast's counts with the moves from→to, and indexing settled messages
// under dayOf(SettledAt). It is the engine's batched write; callers group
// hundreds of changes per call.
func (db *DB) SaveMessages(ms []*campaignd.Message, from []campaignd.MessageState, dayOf func(time.Time) string) error {
	err := db.update(func(txn *badger.Txn) error {
		deltas := map[uint64]*campaignd.Counts{}
		for i, m := range ms {
			day := ""
			if m.State.Final() {
				day = dayOf(m.SettledAt)
			}
			if err := putMessageState(txn, m, day); err != nil {
				return err
			}
			d := deltas[m.BroadcastID]
			if d == nil {
				d = new(campaignd.Counts)
				deltas[m.BroadcastID] = d
			}
			d.Add(from[i], m.State)
		}
		for bid, d := range deltas {
			if err := addCountsTxn(txn, bid, d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: save %d messages: %w", len(ms), err)
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
