package store

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Relayed requests (running as several nodes, SPEC §12): a node that does
// not lead cannot run an operator's action itself, so it queues the request
// here, wakes the leader, and waits for the result beside it.
//
//	q/p/<id>   a pending request (JSON Action), expires after ActionPendingTTL
//	q/r/<id>   its result (JSON ActionResult), expires after ActionResultTTL
//
// A request is taken by deleting its pending key in a transaction, so it is
// run at most once whatever the number of leaders that see it; the waiter
// cancels a request it stopped waiting for the same way, so a request is
// either cancelled or run, never both.
var (
	prefixActionPending = []byte("q/p/")
	prefixActionResult  = []byte("q/r/")
)

const (
	// ActionPendingTTL bounds how long a request nobody takes stays queued
	// (its waiter gave up long before).
	ActionPendingTTL = time.Minute
	// ActionResultTTL bounds how long a result nobody reads is kept.
	ActionResultTTL = time.Hour
)

// Action is one queued request. Kind and Payload are the caller's (the
// program encodes its own requests); ID and At are set by QueueAction.
type Action struct {
	ID      string    `json:"id"`
	Kind    string    `json:"kind"`
	Payload []byte    `json:"payload,omitempty"`
	Node    string    `json:"node,omitempty"` // who asked
	At      time.Time `json:"at"`
}

// ActionResult is what running an Action gave: a payload, or an error code
// and message (campaignd.Error's).
type ActionResult struct {
	ID      string    `json:"id"`
	Payload []byte    `json:"payload,omitempty"`
	Code    string    `json:"code,omitempty"`
	Message string    `json:"message,omitempty"`
	Node    string    `json:"node,omitempty"` // who ran it
	At      time.Time `json:"at"`
}

// newActionID returns a unique id that sorts by time (so pending requests
// are taken in the order they were queued).
func newActionID(now time.Time) string {
	var r [4]byte
	rand.Read(r[:])
	return fmt.Sprintf("%016x%08x", uint64(now.UnixNano()), binary.BigEndian.Uint32(r[:]))
}

func actionKey(prefix []byte, id string) []byte {
	return append(append([]byte{}, prefix...), id...)
}

// QueueAction records a request durably and returns its id.
func (db *DB) QueueAction(a Action) (string, error) {
	a.At = db.now()
	a.ID = newActionID(a.At)
	v, err := json.Marshal(a)
	if err != nil {
		return "", err
	}
	err = db.kv.Update(func(txn Txn) error {
		return txn.SetTTL(actionKey(prefixActionPending, a.ID), v, ActionPendingTTL)
	})
	if err != nil {
		return "", fmt.Errorf("store: queue action: %w", err)
	}
	return a.ID, nil
}

// PendingActions returns the ids of the queued requests, oldest first (at
// most limit; 0: all).
func (db *DB) PendingActions(limit int) ([]string, error) {
	var ids []string
	err := db.kv.View(func(txn Txn) error {
		return txn.Scan(ScanOptions{Prefix: prefixActionPending, KeysOnly: true}, func(k, _ []byte) (bool, error) {
			ids = append(ids, string(k[len(prefixActionPending):]))
			return limit <= 0 || len(ids) < limit, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: pending actions: %w", err)
	}
	return ids, nil
}

// TakeAction removes a pending request and returns it: exactly one caller
// gets it. It returns nil (and no error) when the request was already taken,
// cancelled or expired.
func (db *DB) TakeAction(id string) (*Action, error) {
	var a *Action
	err := db.kv.Update(func(txn Txn) error {
		a = nil
		k := actionKey(prefixActionPending, id)
		v, err := txn.Get(k)
		if errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		a = new(Action)
		if err := json.Unmarshal(v, a); err != nil {
			return fmt.Errorf("action %s: %w", id, err)
		}
		return txn.Delete(k)
	})
	if err != nil {
		return nil, fmt.Errorf("store: take action: %w", err)
	}
	return a, nil
}

// CancelAction withdraws a pending request; it reports whether it was still
// pending (false: it was taken, so it runs or ran, or it had expired).
func (db *DB) CancelAction(id string) (bool, error) {
	var was bool
	err := db.kv.Update(func(txn Txn) error {
		k := actionKey(prefixActionPending, id)
		_, err := txn.Get(k)
		if was = err == nil; !was {
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			return err
		}
		return txn.Delete(k)
	})
	if err != nil {
		return false, fmt.Errorf("store: cancel action: %w", err)
	}
	return was, nil
}

// FinishAction records the result of a taken request. The first result
// stays: a second one for the same id is ignored.
func (db *DB) FinishAction(r ActionResult) error {
	if r.At.IsZero() {
		r.At = db.now()
	}
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	err = db.kv.Update(func(txn Txn) error {
		k := actionKey(prefixActionResult, r.ID)
		if _, err := txn.Get(k); err == nil {
			return nil
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		return txn.SetTTL(k, v, ActionResultTTL)
	})
	if err != nil {
		return fmt.Errorf("store: finish action: %w", err)
	}
	return nil
}

// ActionResult returns the result of a request, or nil when there is none
// yet.
func (db *DB) ActionResult(id string) (*ActionResult, error) {
	var r *ActionResult
	err := db.kv.View(func(txn Txn) error {
		v, err := txn.Get(actionKey(prefixActionResult, id))
		if errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		r = new(ActionResult)
		return json.Unmarshal(v, r)
	})
	if err != nil {
		return nil, fmt.Errorf("store: action result: %w", err)
	}
	return r, nil
}
