package report

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"campaignd"
)

// ReportSource is what writing a report reads: the messages settled on a
// local day, in Tracking ID order, and their broadcasts.
type ReportSource interface {
	// ReportMessages calls fn with every message settled on day
	// (YYYYMMDD, local), in Tracking ID order, streaming (the store's
	// d/<day> index, read with one forward iterator).
	ReportMessages(day string, fn func(*campaignd.Message) error) error
	Broadcast(id uint64) (*campaignd.Broadcast, error)
}

// reportTimeLayout is the seed's "yyyy-mm-dd hh24:mi:ss"; the milliseconds
// are appended by hand because Go's .999 drops the dot when they are zero
// and the seed's sample shows ".0".
const reportTimeLayout = "2006-01-02 15:04:05"

// WriteReport writes the delivery report of day (YYYYMMDD, local) to w:
// the exact header of seed 000 §6, then one row per message settled that
// day, in Tracking ID order, UTF-8 without BOM, LF line ends, fields quoted
// (RFC 4180) only when needed. It streams: memory does not grow with the
// number of rows, only with the number of broadcasts of the day. It returns
// the number of rows written.
//
// Time Stamp is when the SMSC accepted the message (SubmittedAt) in loc; a
// message the SMSC never accepted (REJECTD at submit) has no such time and
// gets the time its status was settled instead.
func WriteReport(ctx context.Context, w io.Writer, src ReportSource, day string, loc *time.Location) (int64, error) {
	if _, err := io.WriteString(w, campaignd.ReportHeader+"\n"); err != nil {
		return 0, err
	}
	cw := csv.NewWriter(w)
	broadcasts := map[uint64]*campaignd.Broadcast{}
	var rows int64
	var ts []byte
	rec := make([]string, 7)
	err := src.ReportMessages(day, func(m *campaignd.Message) error {
		if rows%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		b, ok := broadcasts[m.BroadcastID]
		if !ok {
			var err error
			if b, err = src.Broadcast(m.BroadcastID); err != nil {
				return fmt.Errorf("broadcast of message %d: %w", m.TrackingID, err)
			}
			broadcasts[m.BroadcastID] = b
		}
		at := m.SubmittedAt
		if at.IsZero() {
			at = m.SettledAt
		}
		ts = ts[:0]
		if !at.IsZero() {
			ts = appendReportTime(ts, at.In(loc))
		}
		// Values from the uploaded file and the operators cannot start a
		// spreadsheet formula (SPEC §6); plain numbers stay as they are.
		rec[0], rec[1], rec[2], rec[3] = campaignd.SafeCSV(b.Sender), campaignd.SafeCSV(m.RecipientRaw), strconv.FormatUint(m.TrackingID, 10), campaignd.SafeCSV(b.Name)
		rec[4], rec[5], rec[6] = string(ts), m.State.Reported(), campaignd.SafeCSV(m.MemberID)
		rows++
		return cw.Write(rec)
	})
	if err != nil {
		return rows, fmt.Errorf("report %s: %w", day, err)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return rows, fmt.Errorf("report %s: %w", day, err)
	}
	return rows, nil
}

// appendReportTime appends t as "2006-01-02 15:04:05" then "." and the
// milliseconds with trailing zeros dropped but at least one digit:
// ".0", ".12", ".123".
func appendReportTime(b []byte, t time.Time) []byte {
	b = t.AppendFormat(b, reportTimeLayout)
	ms := t.Nanosecond() / int(time.Millisecond)
	b = append(b, '.')
	if ms == 0 {
		return append(b, '0')
	}
	digits := []byte{byte('0' + ms/100), byte('0' + ms/10%10), byte('0' + ms%10)}
	for digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
	}
	return append(b, digits...)
}

// reportOutput counts and hashes what is written through it.
type reportOutput struct {
	w     io.Writer
	hash  reportHash
	bytes int64
}

type reportHash interface {
	io.Writer
	Sum([]byte) []byte
}

func newReportOutput(w io.Writer) *reportOutput { return &reportOutput{w: w, hash: sha256.New()} }

func (o *reportOutput) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	o.hash.Write(p[:n])
	o.bytes += int64(n)
	return n, err
}

func (o *reportOutput) sum() string { return hex.EncodeToString(o.hash.Sum(nil)) }

// writeReportFile writes path atomically: fill a temporary file in the
// same directory, fsync it, rename it over path and fsync the directory, so
// that path is either the old file or the whole new one, even across a
// crash.
func writeReportFile(path string, fill func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 64<<10)
	if err := fill(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Chmod(0o640); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncReportDir(dir)
}

func syncReportDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
