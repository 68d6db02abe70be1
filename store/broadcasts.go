package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/klauspost/compress/s2"

	"campaignd"
)

// RowsPerChunk is how many rows share one key.
const RowsPerChunk = 256

// BroadcastWriter streams the rows of one ingest job into the store. Rows
// are invisible until Commit writes the broadcast, the upload's outcome and
// removes the job in one transaction.
type BroadcastWriter struct {
	db    *DB
	job   *campaignd.Job
	wb    Batch
	chunk []byte
	enc   []byte // compression scratch, reused
	n     uint32 // rows added
}

// NewBroadcastWriter starts writing the rows of job's broadcast. Rows left by
// an earlier run of the same job (a crash mid-ingest) are removed first.
func (db *DB) NewBroadcastWriter(job *campaignd.Job) (campaignd.RowWriter, error) {
	if err := db.deletePrefix(key(prefixRows, job.BroadcastID)); err != nil {
		return nil, fmt.Errorf("store: clear rows of broadcast %d: %w", job.BroadcastID, err)
	}
	return &BroadcastWriter{db: db, job: job, wb: db.kv.NewBatch()}, nil
}

// Add appends one valid row; its index is the number of rows added before.
func (w *BroadcastWriter) Add(r *campaignd.Row) error {
	if w.chunk == nil {
		w.chunk = make([]byte, 0, 64<<10)
	}
	w.chunk = appendRow(w.chunk, r)
	w.n++
	if w.n%RowsPerChunk == 0 {
		return w.flushChunk()
	}
	return nil
}

// Count returns the number of rows added.
func (w *BroadcastWriter) Count() uint32 { return w.n }

func (w *BroadcastWriter) flushChunk() error {
	if len(w.chunk) == 0 {
		return nil
	}
	chunkNo := uint64((w.n - 1) / RowsPerChunk)
	// Chunks are compressed: with Badger they land in the value log, which
	// Badger does not compress and keeps mapped in memory, so this cuts both
	// disk and resident memory by about four on typical files.
	// s2.Encode needs room for the worst case, about the chunk's size; the
	// batch keeps each value until it is written (Badger's WriteBatch holds
	// many: chunks go to the value log, so its transactions count them as
	// pointers), so it gets an exact copy, not the worst-case buffer: a
	// million-row ingest kept ~96 MB of such buffers alive, and the GC under
	// the default heap limit spent its time on them.
	if n := s2.MaxEncodedLen(len(w.chunk)); cap(w.enc) < n {
		w.enc = make([]byte, n)
	}
	v := bytes.Clone(s2.Encode(w.enc[:cap(w.enc)], w.chunk))
	if err := w.wb.Set(key(prefixRows, w.job.BroadcastID, chunkNo), v); err != nil {
		return fmt.Errorf("store: write rows of broadcast %d: %w", w.job.BroadcastID, err)
	}
	w.chunk = w.chunk[:0]
	return nil
}

// Commit makes the broadcast visible: it assigns b.ID and a block of
// Tracking IDs, stores b, records u as accepted (with the file's hash for
// duplicate detection) and removes the job, atomically, then syncs.
func (w *BroadcastWriter) Commit(b *campaignd.Broadcast, u *campaignd.Upload) error {
	if err := w.flushChunk(); err != nil {
		return err
	}
	if err := w.wb.Flush(); err != nil {
		return fmt.Errorf("store: flush rows of broadcast %d: %w", w.job.BroadcastID, err)
	}
	b.ID = w.job.BroadcastID
	b.UploadID = u.ID
	b.Counts.Total = int64(w.n)
	b.Counts.Queued = int64(w.n)
	u.BroadcastID = b.ID
	u.Outcome = campaignd.UploadAccepted
	err := w.db.kv.Update(func(txn Txn) error {
		if _, err := txn.Get(key(prefixJob, u.ID)); err != nil {
			return fmt.Errorf("job of upload %d: %w", u.ID, err)
		}
		base, err := nextIDs(txn, "tracking", uint64(w.n)+1)
		if err != nil {
			return err
		}
		b.TrackingBase = base
		if err := putJSON(txn, key(prefixBroadcast, b.ID), b); err != nil {
			return err
		}
		if err := putCounts(txn, b.ID, &b.Counts); err != nil {
			return err
		}
		if err := putJSON(txn, key(prefixUpload, u.ID), u); err != nil {
			return err
		}
		if u.SHA256 != "" {
			v := binary.BigEndian.AppendUint64(nil, b.ID)
			v = binary.BigEndian.AppendUint64(v, uint64(b.CreatedAt.UnixNano()))
			if err := txn.Set(append(append([]byte{}, prefixHash...), u.SHA256...), v); err != nil {
				return err
			}
		}
		return txn.Delete(key(prefixJob, u.ID))
	})
	if err != nil {
		return fmt.Errorf("store: commit broadcast %d: %w", b.ID, err)
	}
	w.db.bases.Store(b.ID, b.TrackingBase)
	return w.db.Sync()
}

// Abort drops what was written; the job stays for a later run.
func (w *BroadcastWriter) Abort() error {
	w.wb.Cancel()
	return w.db.deletePrefix(key(prefixRows, w.job.BroadcastID))
}

// Broadcast returns one broadcast.
func (db *DB) Broadcast(id uint64) (*campaignd.Broadcast, error) {
	b := new(campaignd.Broadcast)
	err := db.kv.View(func(txn Txn) error {
		if err := getJSON(txn, key(prefixBroadcast, id), b); err != nil {
			return err
		}
		return overlayCounts(txn, b)
	})
	if errors.Is(err, ErrNotFound) {
		return nil, notFound("Broadcast", id)
	} else if err != nil {
		return nil, fmt.Errorf("store: broadcast %d: %w", id, err)
	}
	return b, nil
}

// Broadcasts returns the broadcasts matching f, newest first, and how many
// match in all.
func (db *DB) Broadcasts(f campaignd.BroadcastFilter) ([]*campaignd.Broadcast, int, error) {
	var out []*campaignd.Broadcast
	n := 0
	err := db.kv.View(func(txn Txn) error {
		return scanJSON(txn, prefixBroadcast, true, func(v []byte) (bool, error) {
			b := new(campaignd.Broadcast)
			if err := json.Unmarshal(v, b); err != nil {
				return false, err
			}
			if f.Status != "" && b.Status != f.Status {
				return true, nil
			}
			n++
			if n > f.Offset && (f.Limit == 0 || len(out) < f.Limit) {
				if err := overlayCounts(txn, b); err != nil {
					return false, err
				}
				out = append(out, b)
			}
			return true, nil
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: list broadcasts: %w", err)
	}
	return out, n, nil
}

// UpdateBroadcast reads broadcast id, lets fn change it and saves it, in one
// transaction. An error from fn aborts the update and is returned as is.
func (db *DB) UpdateBroadcast(id uint64, fn func(*campaignd.Broadcast) error) (*campaignd.Broadcast, error) {
	var b *campaignd.Broadcast
	err := db.kv.Update(func(txn Txn) error {
		var err error
		b, err = updateBroadcastTxn(txn, id, fn)
		return err
	})
	if err != nil {
		if campaignd.ErrorCode(err) != campaignd.EINTERNAL {
			return nil, err
		}
		return nil, fmt.Errorf("store: update broadcast %d: %w", id, err)
	}
	return b, nil
}

// UpdateBroadcastTxn is UpdateBroadcast inside a caller's transaction, for
// store files that change a broadcast together with other keys.
func updateBroadcastTxn(txn Txn, id uint64, fn func(*campaignd.Broadcast) error) (*campaignd.Broadcast, error) {
	b := new(campaignd.Broadcast)
	if err := getJSON(txn, key(prefixBroadcast, id), b); errors.Is(err, ErrNotFound) {
		return nil, notFound("Broadcast", id)
	} else if err != nil {
		return nil, err
	}
	if err := overlayCounts(txn, b); err != nil {
		return nil, err
	}
	before := b.Counts
	if err := fn(b); err != nil {
		return nil, err
	}
	if !sameMessageCounts(&before, &b.Counts) {
		if err := putCounts(txn, id, &b.Counts); err != nil {
			return nil, err
		}
	}
	return b, putJSON(txn, key(prefixBroadcast, id), b)
}

// DeleteBroadcast removes a broadcast and its rows and message states. The
// audit log keeps its history.
func (db *DB) DeleteBroadcast(id uint64) error {
	err := db.kv.Update(func(txn Txn) error {
		if _, err := txn.Get(key(prefixBroadcast, id)); errors.Is(err, ErrNotFound) {
			return notFound("Broadcast", id)
		} else if err != nil {
			return err
		}
		if err := txn.Delete(countsKey(id)); err != nil {
			return err
		}
		return txn.Delete(key(prefixBroadcast, id))
	})
	if err != nil {
		if campaignd.ErrorCode(err) == campaignd.ENOTFOUND {
			return err
		}
		return fmt.Errorf("store: delete broadcast %d: %w", id, err)
	}
	if err := db.deletePrefix(key(prefixRows, id)); err != nil {
		return fmt.Errorf("store: delete rows of broadcast %d: %w", id, err)
	}
	if err := db.deletePrefix(key(prefixMsgState, id)); err != nil {
		return fmt.Errorf("store: delete messages of broadcast %d: %w", id, err)
	}
	return nil
}

// Rows calls fn for each row of broadcast bid from index from on, in order,
// until fn returns an error (ErrStop ends it without error).
func (db *DB) Rows(bid uint64, from uint32, fn func(idx uint32, r *campaignd.Row) error) error {
	prefix := key(prefixRows, bid)
	prefix = append(prefix, '/')
	err := db.kv.View(func(txn Txn) error {
		chunk := uint64(from / RowsPerChunk)
		var buf []byte
		return txn.Scan(ScanOptions{Prefix: prefix, Start: key(prefixRows, bid, chunk)}, func(k, z []byte) (bool, error) {
			chunkNo := binary.BigEndian.Uint64(k[len(k)-8:])
			idx := uint32(chunkNo * RowsPerChunk)
			var r campaignd.Row
			v, err := s2.Decode(buf[:cap(buf)], z)
			if err != nil {
				return false, fmt.Errorf("%w: %v", errCorrupt, err)
			}
			buf = v
			for len(v) > 0 {
				var err error
				if v, err = decodeRow(v, &r); err != nil {
					return false, err
				}
				if idx >= from {
					if err := fn(idx, &r); err != nil {
						return false, err
					}
				}
				idx++
			}
			return true, nil
		})
	})
	if errors.Is(err, campaignd.ErrStop) {
		return nil
	}
	return err
}

// RowReader reads single rows, keeping the last chunk decoded so that rows
// read in order cost one lookup per chunk.
type RowReader struct {
	db    *DB
	bid   uint64
	chunk uint64
	rows  []campaignd.Row
	buf   []byte
}

// NewRowReader returns a reader of single rows.
func (db *DB) NewRowReader() *RowReader { return &RowReader{db: db} }

// Row returns row idx of broadcast bid.
func (rr *RowReader) Row(bid uint64, idx uint32) (*campaignd.Row, error) {
	chunk := uint64(idx / RowsPerChunk)
	if rr.rows == nil || rr.bid != bid || rr.chunk != chunk {
		rr.rows = rr.rows[:0]
		err := rr.db.kv.View(func(txn Txn) error {
			z, err := txn.Get(key(prefixRows, bid, chunk))
			if err != nil {
				return err
			}
			v, err := s2.Decode(rr.buf[:cap(rr.buf)], z)
			if err != nil {
				return fmt.Errorf("%w: %v", errCorrupt, err)
			}
			rr.buf = v
			for len(v) > 0 {
				var r campaignd.Row
				var err error
				if v, err = decodeRow(v, &r); err != nil {
					return err
				}
				rr.rows = append(rr.rows, r)
			}
			return nil
		})
		if errors.Is(err, ErrNotFound) {
			return nil, campaignd.Errorf(campaignd.ENOTFOUND, "Row %d of broadcast %d not found.", idx, bid)
		} else if err != nil {
			return nil, fmt.Errorf("store: row %d of broadcast %d: %w", idx, bid, err)
		}
		rr.bid, rr.chunk = bid, chunk
	}
	i := int(idx % RowsPerChunk)
	if i >= len(rr.rows) {
		return nil, campaignd.Errorf(campaignd.ENOTFOUND, "Row %d of broadcast %d not found.", idx, bid)
	}
	return &rr.rows[i], nil
}

// deletePrefix removes every key under prefix in batches.
func (db *DB) deletePrefix(prefix []byte) error {
	var keys [][]byte
	err := db.kv.View(func(txn Txn) error {
		return txn.Scan(ScanOptions{Prefix: prefix, KeysOnly: true}, func(k, _ []byte) (bool, error) {
			keys = append(keys, k)
			return true, nil
		})
	})
	if err != nil || len(keys) == 0 {
		return err
	}
	wb := db.kv.NewBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return err
		}
	}
	return wb.Flush()
}

func appendRow(b []byte, r *campaignd.Row) []byte {
	b = binary.AppendUvarint(b, uint64(r.Line))
	for _, s := range [...]string{r.Recipient, r.RecipientRaw, r.MemberID, r.Text} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	enc := byte(0)
	if r.Encoding == "UCS-2" {
		enc = 1
	}
	b = append(b, enc)
	return binary.AppendUvarint(b, uint64(r.Segments))
}

var errCorrupt = errors.New("store: corrupt row")

func decodeRow(b []byte, r *campaignd.Row) ([]byte, error) {
	line, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, errCorrupt
	}
	r.Line, b = int(line), b[n:]
	for _, p := range [...]*string{&r.Recipient, &r.RecipientRaw, &r.MemberID, &r.Text} {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return nil, errCorrupt
		}
		*p, b = string(b[n:n+int(l)]), b[n+int(l):]
	}
	if len(b) < 1 {
		return nil, errCorrupt
	}
	r.Encoding = "GSM-7"
	if b[0] == 1 {
		r.Encoding = "UCS-2"
	}
	seg, n := binary.Uvarint(b[1:])
	if n <= 0 {
		return nil, errCorrupt
	}
	r.Segments = int(seg)
	return b[1+n:], nil
}
