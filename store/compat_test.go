package store_test

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"campaignd"
	"campaignd/store"
)

// testdata/store-json-main.tgz is a store written by the code before the
// binary hot records (commit 30d32b4): message states in JSON, counts only in
// the broadcast record. One broadcast of 6 messages, tracking base 1:
// 0 submitted (a0), 1 submitted (a1, b1; b1 UNDELIV), 2 REJECTD 0x0B,
// 3 DELIVRD (a3), 4 and 5 queued; submitted at unix ms 1700000100000. It was made by
// testdata/gen-store-json-main.go.txt run as cmd/genstore in `git archive 30d32b4`.

func openOldStore(t *testing.T) (*store.DB, string) {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open("testdata/store-json-main.tgz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		out, err := os.Create(filepath.Join(dir, filepath.Base(h.Name)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, tr); err != nil {
			t.Fatal(err)
		}
		out.Close()
	}
	db, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return db, dir
}

func TestStoreWrittenBeforeBinaryRecordsReads(t *testing.T) {
	db, dir := openOldStore(t)
	defer func() { db.Close() }()
	at := time.UnixMilli(1700000100000)
	q, s := campaignd.StateQueued, campaignd.StateSubmitted

	b, err := db.Broadcast(1)
	if err != nil {
		t.Fatal(err)
	}
	want := campaignd.Counts{Total: 6, Queued: 2, Submitted: 2, Delivered: 1, Failed: 1}
	if b.Counts != want || b.TrackingBase != 1 {
		t.Fatalf("broadcast counts %+v base %d, want %+v base 1", b.Counts, b.TrackingBase, want)
	}
	var got []*campaignd.Message
	if err := db.Messages(1, 0, func(m *campaignd.Message) error { got = append(got, m); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 {
		t.Fatalf("%d messages", len(got))
	}
	checks := []struct {
		state    campaignd.MessageState
		attempts int
		ids      []string
		parts    []campaignd.MessageState
		code     uint32
	}{
		{s, 1, []string{"a0"}, []campaignd.MessageState{""}, 0},
		{s, 1, []string{"a1", "b1"}, []campaignd.MessageState{"", campaignd.StateUndeliverable}, 0},
		{campaignd.StateRejected, 1, nil, nil, 0x0B},
		{campaignd.StateDelivered, 2, []string{"a3"}, []campaignd.MessageState{campaignd.StateDelivered}, 0},
		{q, 0, nil, nil, 0},
		{q, 0, nil, nil, 0},
	}
	for i, c := range checks {
		m := got[i]
		if m.State != c.state || m.Attempts != c.attempts || !slices.Equal(m.SMSCIDs, c.ids) ||
			!slices.Equal(m.Parts, c.parts) || m.ErrorCode != c.code || m.TrackingID != uint64(1+i) {
			t.Errorf("message %d = %+v, want %+v", i, m, c)
		}
		if c.ids != nil && !m.SubmittedAt.Equal(at) {
			t.Errorf("message %d submitted at %v, want %v", i, m.SubmittedAt, at)
		}
	}
	var waiting []uint32
	if _, err := db.SubmittedBefore(1, at.Add(time.Hour), func(idx uint32) error { waiting = append(waiting, idx); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(waiting, []uint32{0, 1}) {
		t.Fatalf("awaiting receipts: %v, want [0 1]", waiting)
	}
	var reported []uint64
	day := at.UTC().Format("20060102")
	if err := db.ReportMessages(day, func(m *campaignd.Message) error { reported = append(reported, m.TrackingID); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(reported, []uint64{3, 4}) {
		t.Fatalf("report of %s: tracking ids %v, want [3 4]", day, reported)
	}

	// The new code goes on from there: counts start from the record's.
	dayOf := func(t time.Time) string { return t.UTC().Format("20060102") }
	res, err := db.SaveChanges([]campaignd.Change{
		{BroadcastID: 1, Index: 0, From: s, To: campaignd.StateUnknown, At: at.Add(time.Hour)},
		{BroadcastID: 1, Index: 4, From: q, To: s, Attempts: 1, SMSCIDs: []string{"a4"}, At: at},
		{BroadcastID: 1, Index: 2, From: q, To: s}, // stale: not applied
	}, nil, campaignd.SaveOptions{DayOf: dayOf})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Applied, []bool{true, true, false}) {
		t.Fatalf("applied %v", res.Applied)
	}
	want = campaignd.Counts{Total: 6, Queued: 1, Submitted: 2, Delivered: 1, Failed: 1, Unknown: 1}
	check := func(db *store.DB) {
		t.Helper()
		b, err := db.Broadcast(1)
		if err != nil {
			t.Fatal(err)
		}
		if b.Counts != want {
			t.Fatalf("counts %+v, want %+v", b.Counts, want)
		}
		list, _, err := db.Broadcasts(campaignd.BroadcastFilter{})
		if err != nil || len(list) != 1 || list[0].Counts != want {
			t.Fatalf("listed %+v, %v", list, err)
		}
		m, err := db.Message(1, 4)
		if err != nil || m.State != s || !slices.Equal(m.SMSCIDs, []string{"a4"}) || m.TrackingID != 5 {
			t.Fatalf("message 4 = %+v, %v", m, err)
		}
		m, err = db.Message(1, 1) // untouched: still JSON
		if err != nil || m.State != s || !slices.Equal(m.Parts, []campaignd.MessageState{"", campaignd.StateUndeliverable}) {
			t.Fatalf("message 1 = %+v, %v", m, err)
		}
	}
	check(db)
	// Rewritten values are binary; untouched ones stay JSON and still read.
	err = db.KV().View(func(txn store.Txn) error {
		for idx, first := range map[uint32]byte{0: 1, 4: 1, 1: '{'} {
			v, err := txn.Get([]byte("ms/\x00\x00\x00\x00\x00\x00\x00\x01/\x00\x00\x00" + string(rune(idx))))
			if err != nil {
				return err
			}
			if v[0] != first {
				t.Errorf("ms/ of message %d starts %q, want %q", idx, v[0], first)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	check(db)
}
