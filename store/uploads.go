package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"campaignd"
)

// maxLastError bounds Job.LastError, so a job record stays small.
const maxLastError = 500

// SaveJob saves the attempt count, retry time and last error of a job that
// has not finished. A job that has finished meanwhile is left finished.
func (db *DB) SaveJob(job *campaignd.Job) error {
	if len(job.LastError) > maxLastError {
		job.LastError = strings.ToValidUTF8(job.LastError[:maxLastError], "") + "…"
	}
	err := db.kv.Update(func(txn Txn) error {
		k := key(prefixJob, job.Upload.ID)
		if _, err := txn.Get(k); errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		return putJSON(txn, k, job)
	})
	if err != nil {
		return fmt.Errorf("store: save job %d: %w", job.Upload.ID, err)
	}
	return nil
}

// IsTooLarge reports whether err is the engine refusing a value or a
// transaction for its size (ErrTooBig): writing the same thing again cannot
// succeed.
func IsTooLarge(err error) bool { return errors.Is(err, ErrTooBig) }

// IsTooLarge is the function IsTooLarge, for callers that know the store
// only by an interface.
func (db *DB) IsTooLarge(err error) bool { return IsTooLarge(err) }

// CreateUpload records a received upload and its ingest job in one
// transaction, assigns u.ID and syncs the store, so that the 226 can go out.
func (db *DB) CreateUpload(u *campaignd.Upload) (*campaignd.Job, error) {
	var job campaignd.Job
	err := db.kv.Update(func(txn Txn) error {
		uid, err := nextIDs(txn, "upload", 1)
		if err != nil {
			return err
		}
		bid, err := nextIDs(txn, "broadcast", 1)
		if err != nil {
			return err
		}
		u.ID = uid
		u.Outcome = campaignd.UploadReceived
		job = campaignd.Job{Upload: *u, BroadcastID: bid}
		if err := putJSON(txn, key(prefixUpload, uid), u); err != nil {
			return err
		}
		return putJSON(txn, key(prefixJob, uid), &job)
	})
	if err != nil {
		return nil, fmt.Errorf("store: create upload %q: %w", u.Path, err)
	}
	if err := db.Sync(); err != nil {
		return nil, fmt.Errorf("store: sync upload %q: %w", u.Path, err)
	}
	return &job, nil
}

// Jobs returns the ingest jobs that have not finished, oldest first.
func (db *DB) Jobs() ([]*campaignd.Job, error) {
	var jobs []*campaignd.Job
	err := db.kv.View(func(txn Txn) error {
		return scanJSON(txn, prefixJob, false, func(v []byte) (bool, error) {
			j := new(campaignd.Job)
			if err := json.Unmarshal(v, j); err != nil {
				return false, err
			}
			jobs = append(jobs, j)
			return true, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: list jobs: %w", err)
	}
	return jobs, nil
}

// Upload returns one upload.
func (db *DB) Upload(id uint64) (*campaignd.Upload, error) {
	u := new(campaignd.Upload)
	err := db.kv.View(func(txn Txn) error { return getJSON(txn, key(prefixUpload, id), u) })
	if errors.Is(err, ErrNotFound) {
		return nil, notFound("Upload", id)
	} else if err != nil {
		return nil, fmt.Errorf("store: upload %d: %w", id, err)
	}
	return u, nil
}

// Uploads returns uploads newest first, skipping offset and returning at
// most limit, with the total number of uploads.
func (db *DB) Uploads(offset, limit int) ([]*campaignd.Upload, int, error) {
	var out []*campaignd.Upload
	n := 0
	err := db.kv.View(func(txn Txn) error {
		return scanJSON(txn, prefixUpload, true, func(v []byte) (bool, error) {
			n++
			if n <= offset || len(out) >= limit {
				return true, nil
			}
			u := new(campaignd.Upload)
			if err := json.Unmarshal(v, u); err != nil {
				return false, err
			}
			out = append(out, u)
			return true, nil
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: list uploads: %w", err)
	}
	return out, n, nil
}

// RejectUpload finishes a job without a broadcast: the upload's outcome is
// saved and the job removed in one transaction.
func (db *DB) RejectUpload(u *campaignd.Upload) error {
	err := db.kv.Update(func(txn Txn) error {
		if err := putJSON(txn, key(prefixUpload, u.ID), u); err != nil {
			return err
		}
		return txn.Delete(key(prefixJob, u.ID))
	})
	if err != nil {
		return fmt.Errorf("store: reject upload %d: %w", u.ID, err)
	}
	return db.Sync()
}

// SaveUpload overwrites an upload record (e.g. its result path).
func (db *DB) SaveUpload(u *campaignd.Upload) error {
	if err := db.kv.Update(func(txn Txn) error { return putJSON(txn, key(prefixUpload, u.ID), u) }); err != nil {
		return fmt.Errorf("store: save upload %d: %w", u.ID, err)
	}
	return nil
}

// DuplicateOf returns the broadcast created from a file with the same
// SHA-256 accepted at or after since, if any.
func (db *DB) DuplicateOf(sha string, since time.Time) (uint64, bool, error) {
	var bid uint64
	var at int64
	err := db.kv.View(func(txn Txn) error {
		v, err := txn.Get(append(append([]byte{}, prefixHash...), sha...))
		if err != nil {
			return err
		}
		if len(v) != 16 {
			return fmt.Errorf("bad hash record")
		}
		bid, at = binary.BigEndian.Uint64(v), int64(binary.BigEndian.Uint64(v[8:]))
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return 0, false, nil
	} else if err != nil {
		return 0, false, fmt.Errorf("store: hash %s: %w", sha, err)
	}
	if time.Unix(0, at).Before(since) {
		return 0, false, nil
	}
	// A deleted broadcast no longer blocks the same file.
	if _, err := db.Broadcast(bid); campaignd.ErrorCode(err) == campaignd.ENOTFOUND {
		return 0, false, nil
	}
	return bid, true, nil
}

func jsonBytes(v any) ([]byte, error) { return json.Marshal(v) }

func putJSON(txn Txn, k []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return txn.Set(k, b)
}

func getJSON(txn Txn, k []byte, v any) error {
	b, err := txn.Get(k)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// scanJSON calls fn with each value under prefix, in key order (or reverse)
// until fn returns false.
func scanJSON(txn Txn, prefix []byte, reverse bool, fn func(v []byte) (bool, error)) error {
	return txn.Scan(ScanOptions{Prefix: prefix, Reverse: reverse}, func(_, v []byte) (bool, error) { return fn(v) })
}
