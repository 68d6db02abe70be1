package store

import (
	"errors"
	"fmt"
)

// prefixPref holds per-user console preferences: "up/<user>\x00<key>" →
// value (e.g. the console language). They outlive sessions.
var prefixPref = []byte("up/")

func prefKey(user, key string) []byte {
	k := make([]byte, 0, len(prefixPref)+len(user)+1+len(key))
	k = append(k, prefixPref...)
	k = append(k, user...)
	k = append(k, 0)
	return append(k, key...)
}

// UserPref returns a user's preference, or "" when none is set.
func (db *DB) UserPref(user, key string) (string, error) {
	var v string
	err := db.kv.View(func(txn Txn) error {
		b, err := txn.Get(prefKey(user, key))
		v = string(b)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("store: user preference %s of %q: %w", key, user, err)
	}
	return v, nil
}

// SetUserPref stores a user's preference; "" removes it.
func (db *DB) SetUserPref(user, key, value string) error {
	err := db.kv.Update(func(txn Txn) error {
		if value == "" {
			return txn.Delete(prefKey(user, key))
		}
		return txn.Set(prefKey(user, key), []byte(value))
	})
	if err != nil {
		return fmt.Errorf("store: set user preference %s of %q: %w", key, user, err)
	}
	return nil
}
