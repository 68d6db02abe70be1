package ftpd

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"

	"campaignd"
)

var inboxNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// inboxJail makes Root/<testUser>/ with the queued file of an upload named
// name holding content, and returns Root and the upload.
func inboxJail(t *testing.T, name, content string) (string, *campaignd.Upload) {
	t.Helper()
	root := t.TempDir()
	q := filepath.Join(root, testUser, queueDir)
	if err := os.MkdirAll(q, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(q, "A1"), []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	return root, &campaignd.Upload{User: testUser, Path: "/in/" + name, Stored: "/" + queueDir + "/A1", FileName: name, FinishedAt: inboxNow}
}

func readAll(t *testing.T, in *Inbox, u *campaignd.Upload) string {
	t.Helper()
	f, err := in.Open(u)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func fileContent(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestInboxPlace: an upload is read where it was queued, then placed in
// processed/ under its own name with its errors file; the path is recorded
// before the move; a second upload of the name gets a suffixed name and
// overwrites nothing; a rerun keeps the recorded name.
func TestInboxPlace(t *testing.T) {
	root, u := inboxJail(t, "x.csv", "phone,message\n")
	in := NewInbox(InboxOptions{Root: root, Location: time.UTC})
	defer in.Close()
	if in.Gone(u) || readAll(t, in, u) != "phone,message\n" {
		t.Fatal("the queued file is not found")
	}
	var recorded []string
	record := func(u *campaignd.Upload) error {
		recorded = append(recorded, u.ResultPath)
		if _, err := os.Stat(filepath.Join(root, testUser, "processed", "x.csv")); err == nil {
			t.Error("the file moved before its path was recorded")
		}
		return nil
	}
	if err := in.Place(u, campaignd.ProcessedDir, strings.NewReader("line,column,value,error\r\n"), record); err != nil {
		t.Fatal(err)
	}
	jail := filepath.Join(root, testUser)
	if u.ResultPath != "processed/x.csv" || len(recorded) != 1 || recorded[0] != u.ResultPath {
		t.Fatalf("result %q, recorded %q", u.ResultPath, recorded)
	}
	if fileContent(t, filepath.Join(jail, "processed", "x.csv")) != "phone,message\n" ||
		fileContent(t, filepath.Join(jail, "processed", "x.csv.errors.csv")) != "line,column,value,error\r\n" {
		t.Error("result or errors file wrong")
	}
	if _, err := os.Stat(filepath.Join(jail, queueDir, "A1")); err == nil {
		t.Error("the queued file is still there")
	}
	// A rerun finds the file where it went and keeps the name; no errors
	// this time: the stale errors file goes.
	if in.Gone(u) || readAll(t, in, u) != "phone,message\n" {
		t.Fatal("the placed file is not found")
	}
	if err := in.Place(u, campaignd.ProcessedDir, nil, record); err != nil {
		t.Fatal(err)
	}
	if u.ResultPath != "processed/x.csv" || len(recorded) != 1 {
		t.Fatalf("rerun: result %q, recorded %q", u.ResultPath, recorded)
	}
	if _, err := os.Stat(filepath.Join(jail, "processed", "x.csv.errors.csv")); err == nil {
		t.Error("a stale errors file is left")
	}

	// The same name again: a suffix from FinishedAt in Location.
	root2, u2 := inboxJail(t, "x.csv", "second")
	jail2 := filepath.Join(root2, testUser)
	os.MkdirAll(filepath.Join(jail2, "processed"), 0o750)
	os.WriteFile(filepath.Join(jail2, "processed", "x.csv"), []byte("first"), 0o640)
	in2 := NewInbox(InboxOptions{Root: root2, Location: time.UTC})
	defer in2.Close()
	if err := in2.Place(u2, campaignd.RejectedDir, nil, func(*campaignd.Upload) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if u2.ResultPath != "rejected/x.csv" {
		t.Fatalf("result %q", u2.ResultPath)
	}
	_, u3 := inboxJail(t, "x.csv", "third")
	os.WriteFile(filepath.Join(jail2, queueDir, "A2"), []byte("third"), 0o640)
	u3.Stored = "/" + queueDir + "/A2"
	if err := in2.Place(u3, campaignd.ProcessedDir, nil, func(*campaignd.Upload) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if u3.ResultPath != "processed/x_20261122-120000.csv" || fileContent(t, filepath.Join(jail2, "processed", "x.csv")) != "first" {
		t.Fatalf("result %q", u3.ResultPath)
	}
}

// TestInboxRecordFails: when the path cannot be recorded nothing moves and
// the upload names no result.
func TestInboxRecordFails(t *testing.T) {
	root, u := inboxJail(t, "x.csv", "data")
	in := NewInbox(InboxOptions{Root: root})
	defer in.Close()
	boom := errors.New("store down")
	if err := in.Place(u, campaignd.ProcessedDir, strings.NewReader("e"), func(*campaignd.Upload) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Place = %v", err)
	}
	if u.ResultPath != "" || in.Gone(u) || readAll(t, in, u) != "data" {
		t.Fatalf("result %q: the file moved", u.ResultPath)
	}
}

// TestInboxLinkCrash: a crash between the link and the unlink of a move
// leaves two names; the next look finds the placed one and removes the
// queued one.
func TestInboxLinkCrash(t *testing.T) {
	root, u := inboxJail(t, "x.csv", "data")
	jail := filepath.Join(root, testUser)
	os.MkdirAll(filepath.Join(jail, "processed"), 0o750)
	if err := os.Link(filepath.Join(jail, queueDir, "A1"), filepath.Join(jail, "processed", "x.csv")); err != nil {
		t.Fatal(err)
	}
	u.ResultPath = "processed/x.csv"
	in := NewInbox(InboxOptions{Root: root})
	defer in.Close()
	if in.Gone(u) {
		t.Fatal("gone")
	}
	if _, err := os.Stat(filepath.Join(jail, queueDir, "A1")); err == nil {
		t.Error("the queued name is left")
	}
	if err := in.Place(u, campaignd.ProcessedDir, nil, func(*campaignd.Upload) error { return nil }); err != nil || u.ResultPath != "processed/x.csv" {
		t.Fatalf("Place = %v, result %q", err, u.ResultPath)
	}
}

// TestInboxGone: a removed file, an unknown user and a name that would
// leave the jails are all gone, and Open fails for them.
func TestInboxGone(t *testing.T) {
	root, u := inboxJail(t, "x.csv", "data")
	in := NewInbox(InboxOptions{Root: root})
	defer in.Close()
	os.Remove(filepath.Join(root, testUser, queueDir, "A1"))
	for _, v := range []campaignd.Upload{*u, {User: "nobody", Path: "/x.csv"}, {User: "..", Path: "/" + testUser + "/x.csv"},
		{User: testUser, Path: "/../../etc/passwd"}} {
		if !in.Gone(&v) {
			t.Errorf("%+v is not gone", v)
		}
		if _, err := in.Open(&v); err == nil {
			t.Errorf("%+v opened", v)
		}
	}
}

// TestInboxOtherFs: any afero.Fs can stand behind the Inbox; one without
// hard links moves with a check and a rename.
func TestInboxOtherFs(t *testing.T) {
	mem := afero.NewMemMapFs()
	afero.WriteFile(mem, "/q/A1", []byte("data"), 0o640)
	afero.WriteFile(mem, "/processed/x.csv", []byte("earlier"), 0o640)
	in := NewInbox(InboxOptions{Jail: func(user string) (afero.Fs, error) {
		if user != testUser {
			return nil, os.ErrNotExist
		}
		return mem, nil
	}, Location: time.UTC})
	u := &campaignd.Upload{User: testUser, Path: "/x.csv", Stored: "/q/A1", FileName: "x.csv", FinishedAt: inboxNow}
	if readAll(t, in, u) != "data" {
		t.Fatal("not read")
	}
	if err := in.Place(u, campaignd.ProcessedDir, strings.NewReader("errs"), func(*campaignd.Upload) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if u.ResultPath != "processed/x_20261122-120000.csv" {
		t.Fatalf("result %q", u.ResultPath)
	}
	for p, want := range map[string]string{"/processed/x.csv": "earlier", "/processed/x_20261122-120000.csv": "data",
		"/processed/x_20261122-120000.csv.errors.csv": "errs"} {
		if b, err := afero.ReadFile(mem, p); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
	if ok, _ := afero.Exists(mem, "/q/A1"); ok {
		t.Error("the queued file is left")
	}
}

// TestFolders: Options.Folders are made in each jail at Open.
func TestFolders(t *testing.T) {
	ts := mustOpenServer(t, func(o *Options) { o.Folders = []string{campaignd.SuppressionsDir} })
	if fi, err := os.Stat(filepath.Join(ts.jail(), campaignd.SuppressionsDir)); err != nil || !fi.IsDir() {
		t.Fatalf("suppressions/ not made: %v", err)
	}
}
