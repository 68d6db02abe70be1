package store

import (
	"encoding/json"
	"fmt"

	"campaignd"
)

// prefixMsgState is declared here so DeleteBroadcast can clear it; the
// engine's store file owns the layout of its values.
var prefixMsgState = []byte("ms/")

// Audit appends an entry to the audit log.
func (db *DB) Audit(e campaignd.AuditEntry) error {
	if e.At.IsZero() {
		e.At = db.now()
	}
	err := db.kv.Update(func(txn Txn) error {
		seq, err := nextIDs(txn, "audit", 1)
		if err != nil {
			return err
		}
		return putJSON(txn, key(prefixAudit, e.BroadcastID, uint64(e.At.UnixNano()), seq), &e)
	})
	if err != nil {
		return fmt.Errorf("store: audit %s: %w", e.Action, err)
	}
	return nil
}

// AuditLog returns the audit entries about broadcast bid, oldest first.
func (db *DB) AuditLog(bid uint64) ([]campaignd.AuditEntry, error) {
	var out []campaignd.AuditEntry
	prefix := append(key(prefixAudit, bid), '/')
	err := db.kv.View(func(txn Txn) error {
		return scanJSON(txn, prefix, false, func(v []byte) (bool, error) {
			var e campaignd.AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return false, err
			}
			out = append(out, e)
			return true, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: audit log of broadcast %d: %w", bid, err)
	}
	return out, nil
}
