package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"campaignd"
)

// UploadsPage returns uploads newest first, skipping offset and returning at
// most limit, with the total number of uploads. Each upload carries at most
// maxErrors of its stored errors (ErrorCount is as stored): however large a
// record is, a page of the Files list stays small. Only the records on the
// page are read; the total counts keys.
func (db *DB) UploadsPage(offset, limit, maxErrors int) ([]*campaignd.Upload, int, error) {
	var out []*campaignd.Upload
	n := 0
	err := db.kv.View(func(txn Txn) error {
		// The keys are counted without their values; the page's records
		// are read by Get.
		var page [][]byte
		err := txn.Scan(ScanOptions{Prefix: prefixUpload, Reverse: true, KeysOnly: true}, func(k, _ []byte) (bool, error) {
			n++
			if n > offset && len(page) < limit {
				page = append(page, k)
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		for _, k := range page {
			v, err := txn.Get(k)
			if errors.Is(err, ErrNotFound) {
				continue // cannot happen in one transaction
			} else if err != nil {
				return err
			}
			u, _, err := decodeUploadPart(v, 0, maxErrors)
			if err != nil {
				return fmt.Errorf("upload key %x: %w", k, err)
			}
			out = append(out, u)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: list uploads: %w", err)
	}
	return out, n, nil
}

// UploadSummary returns one upload with at most maxErrors of its errors.
func (db *DB) UploadSummary(id uint64, maxErrors int) (*campaignd.Upload, error) {
	u, _, err := db.uploadPart(id, 0, maxErrors)
	return u, err
}

// UploadErrors returns one upload carrying its stored errors from offset,
// at most limit of them, and how many errors are stored.
func (db *DB) UploadErrors(id uint64, offset, limit int) (*campaignd.Upload, int, error) {
	return db.uploadPart(id, offset, limit)
}

func (db *DB) uploadPart(id uint64, offset, limit int) (*campaignd.Upload, int, error) {
	var u *campaignd.Upload
	var total int
	err := db.kv.View(func(txn Txn) error {
		v, err := txn.Get(key(prefixUpload, id))
		if err != nil {
			return err
		}
		u, total, err = decodeUploadPart(v, offset, limit)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return nil, 0, notFound("Upload", id)
	} else if err != nil {
		return nil, 0, fmt.Errorf("store: upload %d: %w", id, err)
	}
	return u, total, nil
}

// decodeUploadPart decodes an upload record keeping only errors
// [offset, offset+limit) of its error list, and returns how many errors the
// record holds. The list is walked element by element, so the errors left
// out are never held as values.
func decodeUploadPart(v []byte, offset, limit int) (*campaignd.Upload, int, error) {
	dec := json.NewDecoder(bytes.NewReader(v))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, 0, fmt.Errorf("upload record: not an object: %v", err)
	}
	var rest bytes.Buffer // every other field, re-assembled
	rest.WriteByte('{')
	var errs []campaignd.FileError
	total := 0
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, 0, err
		}
		name, _ := t.(string)
		if name != "errors" {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, 0, err
			}
			if rest.Len() > 1 {
				rest.WriteByte(',')
			}
			k, _ := json.Marshal(name)
			rest.Write(k)
			rest.WriteByte(':')
			rest.Write(raw)
			continue
		}
		if t, err = dec.Token(); err != nil {
			return nil, 0, err
		}
		if t == nil { // null
			continue
		}
		if t != json.Delim('[') {
			return nil, 0, fmt.Errorf("upload record: errors is not a list")
		}
		for dec.More() {
			if total >= offset && len(errs) < limit {
				var fe campaignd.FileError
				if err := dec.Decode(&fe); err != nil {
					return nil, 0, err
				}
				errs = append(errs, fe)
			} else {
				var skip struct{}
				if err := dec.Decode(&skip); err != nil {
					return nil, 0, err
				}
			}
			total++
		}
		if _, err := dec.Token(); err != nil { // ]
			return nil, 0, err
		}
	}
	rest.WriteByte('}')
	u := new(campaignd.Upload)
	if err := json.Unmarshal(rest.Bytes(), u); err != nil {
		return nil, 0, err
	}
	u.Errors = errs
	return u, total, nil
}
