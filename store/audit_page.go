package store

import (
	"encoding/json"
	"fmt"
	"sort"

	"campaignd"
)

// AuditSearch returns one page of the audit entries q selects, newest
// first, and how many it selects in all. With a broadcast it reads only
// that broadcast's entries; otherwise the whole log (a few entries per
// broadcast and per opt-out change, so it stays small).
func (db *DB) AuditSearch(q campaignd.AuditQuery) ([]campaignd.AuditEntry, int, error) {
	prefix := append([]byte{}, prefixAudit...)
	if q.BroadcastID > 0 {
		prefix = append(key(prefixAudit, q.BroadcastID), '/')
	}
	var all []campaignd.AuditEntry
	err := db.kv.View(func(txn Txn) error {
		return scanJSON(txn, prefix, false, func(v []byte) (bool, error) {
			var e campaignd.AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return false, err
			}
			if (q.User != "" && e.User != q.User) || (!q.From.IsZero() && e.At.Before(q.From)) ||
				(!q.To.IsZero() && !e.At.Before(q.To)) {
				return true, nil
			}
			all = append(all, e)
			return true, nil
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: audit search: %w", err)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].At.After(all[j].At) })
	total := len(all)
	if q.Offset >= total {
		return nil, total, nil
	}
	end := total
	if q.Limit > 0 {
		end = min(total, q.Offset+q.Limit)
	}
	return all[q.Offset:end], total, nil
}
