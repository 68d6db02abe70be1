package store

import (
	"errors"
	"fmt"

	"campaignd"
)

var prefixSession = []byte("s/")

// SaveSession stores a web session until its expiry (the engine's TTL).
func (db *DB) SaveSession(s *campaignd.Session) error {
	ttl := s.ExpiresAt.Sub(db.now())
	if ttl <= 0 {
		return campaignd.Errorf(campaignd.EINVALID, "Session already expired.")
	}
	err := db.kv.Update(func(txn Txn) error {
		v, err := jsonBytes(s)
		if err != nil {
			return err
		}
		return txn.SetTTL(append(append([]byte{}, prefixSession...), s.ID...), v, ttl)
	})
	if err != nil {
		return fmt.Errorf("store: save session: %w", err)
	}
	return nil
}

// Session returns a live session, or ENOTFOUND.
func (db *DB) Session(id string) (*campaignd.Session, error) {
	s := new(campaignd.Session)
	err := db.kv.View(func(txn Txn) error {
		return getJSON(txn, append(append([]byte{}, prefixSession...), id...), s)
	})
	if errors.Is(err, ErrNotFound) || (err == nil && db.now().After(s.ExpiresAt)) {
		return nil, campaignd.Errorf(campaignd.ENOTFOUND, "Session not found.")
	} else if err != nil {
		return nil, fmt.Errorf("store: session: %w", err)
	}
	return s, nil
}

// DeleteSession ends a session.
func (db *DB) DeleteSession(id string) error {
	err := db.kv.Update(func(txn Txn) error {
		return txn.Delete(append(append([]byte{}, prefixSession...), id...))
	})
	if err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}
