package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

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
	if err := db.kv.Update(func(txn Txn) error { return putJSON(txn, reportKey(d), r) }); err != nil {
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
	err = db.kv.View(func(txn Txn) error { return getJSON(txn, reportKey(d), r) })
	if errors.Is(err, ErrNotFound) {
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
	err := db.kv.View(func(txn Txn) error {
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

// ReportMessages calls fn with every message settled on local day
// (YYYYMMDD), in Tracking ID order, streaming: the d/<day> index read the
// way a whole day's report needs it. A broadcast's Tracking IDs are one
// block, so in Tracking ID order the message states are visited broadcast by
// broadcast in index order; a stateCursor reads them a page at a time
// instead of a lookup per message. The index is read a page at a time too,
// and fn is called outside any transaction. ErrStop from fn ends it quietly.
func (db *DB) ReportMessages(day string, fn func(*campaignd.Message) error) error {
	prefix := append(append(append([]byte{}, prefixSettled...), day...), '/')
	rr := db.NewRowReader()
	bases := map[uint64]uint64{} // of the broadcasts that exist
	var states *stateCursor
	type settled struct {
		bid uint64
		idx uint32
	}
	var page []settled
	var start []byte
	for {
		page = page[:0]
		var next []byte
		err := db.kv.View(func(txn Txn) error {
			err := txn.Scan(ScanOptions{Prefix: prefix, Start: start}, func(k, v []byte) (bool, error) {
				if len(page) == reportPage {
					next = k
					return false, nil
				}
				if len(v) != 12 {
					return false, errCorrupt
				}
				page = append(page, settled{binary.BigEndian.Uint64(v), binary.BigEndian.Uint32(v[8:])})
				return true, nil
			})
			if err != nil {
				return err
			}
			for _, e := range page {
				if _, ok := bases[e.bid]; ok {
					continue
				}
				b := new(campaignd.Broadcast)
				if err := getJSON(txn, key(prefixBroadcast, e.bid), b); errors.Is(err, ErrNotFound) {
					continue // deleted since; cannot happen for sent broadcasts
				} else if err != nil {
					return err
				}
				bases[e.bid] = b.TrackingBase
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range page {
			base, ok := bases[e.bid]
			if !ok {
				continue
			}
			row, err := rr.Row(e.bid, e.idx)
			if err != nil {
				return err
			}
			m := &campaignd.Message{Row: *row, BroadcastID: e.bid, Index: e.idx, TrackingID: base + uint64(e.idx)}
			if states == nil || states.bid != e.bid {
				states = db.newStateCursor(e.bid)
			}
			s := &msgState{State: campaignd.StateQueued}
			v, err := states.at(e.idx)
			if err != nil {
				return err
			}
			if v != nil {
				if err := s.decode(v); err != nil {
					return err
				}
			}
			s.apply(m)
			if err := fn(m); err != nil {
				if errors.Is(err, campaignd.ErrStop) {
					return nil
				}
				return err
			}
		}
		if next == nil {
			return nil
		}
		start = next
	}
}

// reportPage is how many entries of the d/ index ReportMessages reads in
// one transaction.
const reportPage = 1024
