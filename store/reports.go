package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"campaignd"
)

// prefixReport holds each produced day's report and its push state:
// p/<YYYYMMDD> -> campaignd.Report (JSON). Partial (current-day) reports are
// never stored.
var prefixReport = []byte("p/")

func reportKey(day string) []byte {
	return append(append([]byte{}, prefixReport...), day...)
}

// compactDay turns "YYYY-MM-DD" into "YYYYMMDD" and checks the shape.
func compactDay(day string) (string, error) {
	d := strings.ReplaceAll(day, "-", "")
	if len(d) != 8 || strings.Trim(d, "0123456789") != "" {
		return "", campaignd.Errorf(campaignd.EINVALID, "Invalid report day %q.", day)
	}
	return d, nil
}

// SaveReport writes r (a produced day's report and its push state) under
// its day, replacing what was there.
func (db *DB) SaveReport(r *campaignd.Report) error {
	d, err := compactDay(r.Day)
	if err != nil {
		return err
	}
	if err := db.update(func(txn *badger.Txn) error { return putJSON(txn, reportKey(d), r) }); err != nil {
		return fmt.Errorf("store: save report %s: %w", r.Day, err)
	}
	return nil
}

// Report returns the report of day ("YYYYMMDD" or "YYYY-MM-DD"), or an
// ENOTFOUND error when that day has not been produced.
func (db *DB) Report(day string) (*campaignd.Report, error) {
	d, err := compactDay(day)
	if err != nil {
		return nil, err
	}
	r := new(campaignd.Report)
	err = db.db.View(func(txn *badger.Txn) error { return getJSON(txn, reportKey(d), r) })
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, campaignd.Errorf(campaignd.ENOTFOUND, "No report for %s.", day)
	} else if err != nil {
		return nil, fmt.Errorf("store: report %s: %w", day, err)
	}
	return r, nil
}

// Reports returns the produced reports, newest day first, at most limit of
// them (0: all).
func (db *DB) Reports(limit int) ([]*campaignd.Report, error) {
	var out []*campaignd.Report
	err := db.db.View(func(txn *badger.Txn) error {
		return scanJSON(txn, prefixReport, true, func(v []byte) (bool, error) {
			r := new(campaignd.Report)
			if err := json.Unmarshal(v, r); err != nil {
				return false, err
			}
			out = append(out, r)
			return limit == 0 || len(out) < limit, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: list reports: %w", err)
	}
	return out, nil
}
