package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"campaignd"
)

// The durable timer index of the timing wheel:
//
//	t/<be due unix ms>/<kind>/<id>  -> empty    time-ordered: a prefix scan yields due timers in order
//	tr/<kind>/<id>                  -> be due   reverse index, to move or cancel a timer
//
// A kind never contains '/'; an id may. Both keys change in one transaction.
var (
	prefixTimer    = []byte("t/")
	prefixTimerRev = []byte("tr/")
)

func timerKey(kind, id string, dueMS int64) []byte {
	k := make([]byte, 0, len(prefixTimer)+10+len(kind)+len(id))
	k = append(k, prefixTimer...)
	k = binary.BigEndian.AppendUint64(k, uint64(dueMS))
	k = append(k, '/')
	k = append(k, kind...)
	k = append(k, '/')
	return append(k, id...)
}

func timerRevKey(kind, id string) []byte {
	k := make([]byte, 0, len(prefixTimerRev)+1+len(kind)+len(id))
	k = append(k, prefixTimerRev...)
	k = append(k, kind...)
	k = append(k, '/')
	return append(k, id...)
}

// parseTimerKey splits t/<due>/<kind>/<id>.
func parseTimerKey(k []byte) (kind, id string, dueMS int64, ok bool) {
	k = k[len(prefixTimer):]
	if len(k) < 10 || k[8] != '/' {
		return "", "", 0, false
	}
	dueMS = int64(binary.BigEndian.Uint64(k))
	rest := k[9:]
	i := bytes.IndexByte(rest, '/')
	if i < 0 {
		return "", "", 0, false
	}
	return string(rest[:i]), string(rest[i+1:]), dueMS, true
}

func checkKind(kind string) error {
	if kind == "" || strings.Contains(kind, "/") {
		return fmt.Errorf("store: bad timer kind %q", kind)
	}
	return nil
}

// getTimerDue reads tr/<kind>/<id> inside txn.
func getTimerDue(txn Txn, kind, id string) (int64, bool, error) {
	v, err := txn.Get(timerRevKey(kind, id))
	if errors.Is(err, ErrNotFound) {
		return 0, false, nil
	} else if err != nil {
		return 0, false, err
	}
	if len(v) != 8 {
		return 0, false, errCorrupt
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

// putTimerTxn sets (or moves) a timer inside txn and reports whether it
// existed before.
func putTimerTxn(txn Txn, kind, id string, dueMS int64) (bool, error) {
	old, existed, err := getTimerDue(txn, kind, id)
	if err != nil {
		return false, err
	}
	if existed {
		if old == dueMS {
			return true, nil
		}
		if err := txn.Delete(timerKey(kind, id, old)); err != nil {
			return false, err
		}
	}
	if err := txn.Set(timerKey(kind, id, dueMS), nil); err != nil {
		return false, err
	}
	return existed, txn.Set(timerRevKey(kind, id), binary.BigEndian.AppendUint64(nil, uint64(dueMS)))
}

// PutTimer schedules timer kind/id at due, moving it if it exists, and
// reports whether it existed.
func (db *DB) PutTimer(kind, id string, due time.Time) (existed bool, err error) {
	if err := checkKind(kind); err != nil {
		return false, err
	}
	err = db.kv.Update(func(txn Txn) error {
		existed, err = putTimerTxn(txn, kind, id, due.UnixMilli())
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: put timer %s/%s: %w", kind, id, err)
	}
	return existed, nil
}

// DeleteTimer removes timer kind/id and reports whether it existed.
func (db *DB) DeleteTimer(kind, id string) (existed bool, err error) {
	return db.deleteTimer(kind, id, -1)
}

// DeleteTimerIf removes timer kind/id only if it is still due at due (it was
// not moved meanwhile), and reports whether it did.
func (db *DB) DeleteTimerIf(kind, id string, due time.Time) (bool, error) {
	return db.deleteTimer(kind, id, due.UnixMilli())
}

func (db *DB) deleteTimer(kind, id string, ifDue int64) (deleted bool, err error) {
	err = db.kv.Update(func(txn Txn) error {
		deleted = false
		old, ok, err := getTimerDue(txn, kind, id)
		if err != nil || !ok || (ifDue >= 0 && old != ifDue) {
			return err
		}
		if err := txn.Delete(timerKey(kind, id, old)); err != nil {
			return err
		}
		deleted = true
		return txn.Delete(timerRevKey(kind, id))
	})
	if err != nil {
		return false, fmt.Errorf("store: delete timer %s/%s: %w", kind, id, err)
	}
	return deleted, nil
}

// MoveTimerIf moves timer kind/id to newDue only if it is still due at due,
// and reports whether it did.
func (db *DB) MoveTimerIf(kind, id string, due, newDue time.Time) (moved bool, err error) {
	err = db.kv.Update(func(txn Txn) error {
		moved = false
		old, ok, err := getTimerDue(txn, kind, id)
		if err != nil || !ok || old != due.UnixMilli() {
			return err
		}
		moved = true
		_, err = putTimerTxn(txn, kind, id, newDue.UnixMilli())
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: move timer %s/%s: %w", kind, id, err)
	}
	return moved, nil
}

// TimerDue returns when timer kind/id is due, and whether it exists.
func (db *DB) TimerDue(kind, id string) (time.Time, bool, error) {
	var due int64
	var ok bool
	err := db.kv.View(func(txn Txn) error {
		var err error
		due, ok, err = getTimerDue(txn, kind, id)
		return err
	})
	if err != nil || !ok {
		if err != nil {
			err = fmt.Errorf("store: timer %s/%s: %w", kind, id, err)
		}
		return time.Time{}, false, err
	}
	return time.UnixMilli(due), true, nil
}

// ScanTimers calls fn with the timers due before until, earliest first, until
// fn returns false. It reads keys only.
func (db *DB) ScanTimers(until time.Time, fn func(campaignd.Timer) bool) error {
	end := timerKey("", "", until.UnixMilli())[:len(prefixTimer)+8]
	err := db.kv.View(func(txn Txn) error {
		return txn.Scan(ScanOptions{Prefix: prefixTimer, KeysOnly: true}, func(k, _ []byte) (bool, error) {
			if bytes.Compare(k, end) >= 0 {
				return false, nil
			}
			kind, id, due, ok := parseTimerKey(k)
			if !ok {
				return true, nil
			}
			return fn(campaignd.Timer{Kind: kind, ID: id, Due: time.UnixMilli(due)}), nil
		})
	})
	if err != nil {
		return fmt.Errorf("store: scan timers: %w", err)
	}
	return nil
}

// CountTimers returns the number of pending timers (a key-only scan).
func (db *DB) CountTimers() (int, error) {
	n := 0
	err := db.kv.View(func(txn Txn) error {
		return txn.Scan(ScanOptions{Prefix: prefixTimerRev, KeysOnly: true}, func(_, _ []byte) (bool, error) {
			n++
			return true, nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("store: count timers: %w", err)
	}
	return n, nil
}
