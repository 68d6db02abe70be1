package ftpd

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"campaignd/internal/testenv"
)

func TestStorCSVTriggersBeforeReply(t *testing.T) {
	ts := mustOpenServer(t, nil)
	c := ts.dial(t)
	if err := c.MakeDir("in"); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(t, 1<<20+17)
	before := time.Now()
	if err := c.Stor("/in/x.csv", bytes.NewReader(data)); err != nil {
		t.Fatalf("Stor: %v", err)
	}
	// No waiting: OnUpload must have run before the 226 reply.
	got := ts.rec.list()
	if len(got) != 1 {
		t.Fatalf("OnUpload called %d times before Stor returned, want 1", len(got))
	}
	u := got[0]
	if !strings.HasPrefix(u.Stored, "/"+queueDir+"/") {
		t.Errorf("Stored = %q, want a name in the queue", u.Stored)
	}
	want := Upload{
		User:       testUser,
		Path:       "/in/x.csv",
		Stored:     u.Stored,
		Size:       int64(len(data)),
		SHA256:     sha256Hex(data),
		RemoteAddr: u.RemoteAddr,
		Via:        "STOR",
		At:         u.At,
	}
	if u != want {
		t.Errorf("Upload = %+v\nwant     %+v", u, want)
	}
	if !strings.HasPrefix(u.RemoteAddr, "127.0.0.1:") {
		t.Errorf("RemoteAddr = %q", u.RemoteAddr)
	}
	if u.At.Before(before.Add(-time.Second)) || u.At.After(time.Now()) {
		t.Errorf("At = %v", u.At)
	}
	if !ts.rec.wasInPlace(0) {
		t.Error("the file was not complete in the queue when OnUpload ran")
	}
	onDisk, err := os.ReadFile(ts.rec.path(u))
	if err != nil || !bytes.Equal(onDisk, data) {
		t.Fatalf("file on disk differs: %v", err)
	}
	if fi, _ := os.Stat(ts.rec.path(u)); fi.Mode().Perm() != filePerm {
		t.Errorf("file mode = %v, want %v", fi.Mode().Perm(), os.FileMode(filePerm))
	}
	if names := filesIn(t, filepath.Join(ts.jail(), "in")); len(names) != 0 {
		t.Errorf("directory holds %v, want nothing: x.csv waits in the queue", names)
	}
	if ts.ev.get("upload:triggered") != 1 {
		t.Error("missing upload event")
	}

	// Upper case counts as .csv too; an upload to the same name triggers again.
	if err := c.Stor("/in/Y.CSV", strings.NewReader("a")); err != nil {
		t.Fatal(err)
	}
	if err := c.Stor("/in/x.csv", strings.NewReader("b")); err != nil {
		t.Fatal(err)
	}
	if n := len(ts.rec.list()); n != 3 {
		t.Errorf("OnUpload calls = %d, want 3", n)
	}
}

func TestStorOtherNamesDoNotTrigger(t *testing.T) {
	ts := mustOpenServer(t, nil)
	c := ts.dial(t)
	for _, name := range []string{"x.txt", "x.csv.part", "xcsv", "x.csv.tmp"} {
		if err := c.Stor(name, strings.NewReader("data")); err != nil {
			t.Fatalf("Stor %s: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(ts.jail(), name)); err != nil {
			t.Errorf("%s not stored: %v", name, err)
		}
	}
	if n := len(ts.rec.list()); n != 0 {
		t.Errorf("OnUpload called %d times", n)
	}
	if got := ts.ev.get("upload:stored"); got != 4 {
		t.Errorf("stored events = %d, want 4", got)
	}
}

func TestRenameToCSVTriggers(t *testing.T) {
	ts := mustOpenServer(t, nil)
	c := ts.dial(t)
	if err := c.MakeDir("in"); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(t, 70_000)
	if err := c.Stor("in/x.csv.part", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if n := len(ts.rec.list()); n != 0 {
		t.Fatalf("the .part upload triggered")
	}
	if err := c.Rename("in/x.csv.part", "in/x.csv"); err != nil {
		t.Fatalf("Rename: %v", err)
	}
	got := ts.rec.list()
	if len(got) != 1 {
		t.Fatalf("OnUpload called %d times, want 1", len(got))
	}
	u := got[0]
	if u.Via != "RNTO" || u.Path != "/in/x.csv" || u.Size != int64(len(data)) || u.SHA256 != sha256Hex(data) ||
		u.User != testUser ||
		!strings.HasPrefix(u.Stored, "/"+queueDir+"/") {
		t.Errorf("Upload = %+v", u)
	}
	if !ts.rec.wasInPlace(0) {
		t.Error("file not in place when OnUpload ran")
	}
	if names := filesIn(t, filepath.Join(ts.jail(), "in")); len(names) != 0 {
		t.Errorf("in/ holds %v, want nothing: the renamed file waits in the queue", names)
	}
	// Renames to other names do not trigger.
	if err := c.Stor("in/z.csv.part", strings.NewReader("z")); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("in/z.csv.part", "in/x.done"); err != nil {
		t.Fatal(err)
	}
	if err := c.MakeDir("in/dir.csv"); err != nil {
		t.Fatal(err)
	}
	if err := c.MakeDir("d"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("d", "d2.csv"); err != nil { // a directory is not an upload
		t.Fatal(err)
	}
	if n := len(ts.rec.list()); n != 1 {
		t.Errorf("OnUpload calls = %d, want 1", n)
	}
}

// processed/, rejected/ and reports/ (written by campaignd) are read-only to
// the partner: every command that would change them answers 550, listing
// and downloading work. A partner's own folder of the same name deeper down
// is writable but never triggers.
func TestResultDirectoriesReadOnly(t *testing.T) {
	ts := mustOpenServer(t, nil)
	for _, dir := range []string{"processed", "rejected", "reports", "Processed"} {
		if err := os.MkdirAll(filepath.Join(ts.jail(), dir, "sub"), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ts.jail(), dir, "x.csv"), []byte("result"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	c := dialRaw(t, ts.Addr())
	c.login()
	if code, msg := c.cmd("MKD in"); code != 257 {
		t.Fatalf("MKD in: %d %s", code, msg)
	}
	put := func(name string) (int, string) {
		addr := c.epsv()
		c.send("STOR %s", name)
		data, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer data.Close()
		code, msg := c.read()
		if code == 150 {
			_, _ = data.Write([]byte("a,b\n"))
			_ = data.Close()
			code, msg = c.read()
		}
		return code, msg
	}
	if code, msg := put("in/y.part"); code != 226 {
		t.Fatalf("STOR in/y.part: %d %s", code, msg)
	}
	for _, dir := range []string{"processed", "rejected", "reports", "Processed"} {
		for _, cmd := range []string{
			"DELE " + dir + "/x.csv",
			"RMD " + dir + "/sub",
			"RMD " + dir,
			"MKD " + dir + "/new",
			"RNFR " + dir + "/x.csv",
			"RNFR " + dir,
			"APPE " + dir + "/x.csv",
		} {
			if code, msg := c.cmd("%s", cmd); code != 550 {
				t.Errorf("%s: %d %s, want 550", cmd, code, msg)
			}
		}
		if code, msg := c.cmd("RNFR in/y.part"); code != 350 {
			t.Fatalf("RNFR in/y.part: %d %s", code, msg)
		}
		if code, msg := c.cmd("RNTO %s/y.csv", dir); code != 550 {
			t.Errorf("RNTO %s/y.csv: %d %s, want 550", dir, code, msg)
		}
		for _, name := range []string{dir + "/x.csv", dir + "/new.csv", dir + "/sub/z.csv"} {
			if code, msg := put(name); code != 550 {
				t.Errorf("STOR %s: %d %s, want 550", name, code, msg)
			}
		}
		if b, err := os.ReadFile(filepath.Join(ts.jail(), dir, "x.csv")); err != nil || string(b) != "result" {
			t.Errorf("%s/x.csv changed: %q %v", dir, b, err)
		}
		if names := filesIn(t, filepath.Join(ts.jail(), dir)); len(names) != 2 {
			t.Errorf("%s holds %v, want [sub x.csv]", dir, names)
		}
	}
	if code, msg := c.cmd("SITE CHMOD 777 processed/x.csv"); code/100 != 5 {
		t.Errorf("SITE: %d %s, want a 5xx refusal", code, msg)
	}
	// Listing and downloading still work.
	fc := ts.dial(t)
	if entries, err := fc.List("processed"); err != nil || len(entries) != 2 {
		t.Errorf("LIST processed = %v, %v", entries, err)
	}
	r, err := fc.Retr("processed/x.csv")
	if err != nil {
		t.Fatalf("RETR: %v", err)
	}
	b, _ := io.ReadAll(r)
	_ = r.Close()
	if string(b) != "result" {
		t.Errorf("RETR processed/x.csv = %q", b)
	}
	// A folder named processed deeper down is the partner's: writable, never triggers.
	if err := fc.MakeDir("in/processed"); err != nil {
		t.Fatal(err)
	}
	if err := fc.Stor("in/processed/x.csv", strings.NewReader("a,b\n")); err != nil {
		t.Fatalf("STOR in/processed/x.csv: %v", err)
	}
	if err := fc.Rename("in/y.part", "in/processed/y.csv"); err != nil {
		t.Fatal(err)
	}
	if n := len(ts.rec.list()); n != 0 {
		t.Errorf("OnUpload called %d times for files under result directories", n)
	}
}

func TestOnUploadErrorFailsUpload(t *testing.T) {
	ts := mustOpenServer(t, nil)
	ts.rec.setFail(errors.New("store unavailable"))
	c := ts.dial(t)

	err := c.Stor("x.csv", strings.NewReader("recipient,message\n"))
	if err == nil {
		t.Fatal("Stor succeeded although OnUpload failed")
	}
	// 451, "local error in processing": the same upload may succeed later
	// (a 550 reads as a permanent refusal to the partner's client).
	if code := replyCode(err); code != 451 {
		t.Errorf("reply = %v, want 451", err)
	}
	if strings.Contains(err.Error(), "store unavailable") {
		t.Errorf("the callback's internal error reached the client: %v", err)
	}
	if names := filesIn(t, ts.jail()); len(names) != 0 {
		t.Errorf("files left: %v", names)
	}
	if ts.ev.get("upload:failed") != 1 {
		t.Error("missing upload event")
	}

	// A failed RNTO trigger leaves the source where it was.
	if err := c.Stor("y.csv.part", strings.NewReader("recipient,message\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("y.csv.part", "y.csv"); replyCode(err) != 451 {
		t.Fatalf("Rename while OnUpload fails: %v, want 451", err)
	}
	// The next failure of the client's own making is still a 550.
	if err := c.Stor("/nodir/z.csv", strings.NewReader("x")); replyCode(err) != 550 {
		t.Errorf("STOR into a missing directory after a 451: %v, want 550", err)
	}
	if names := filesIn(t, ts.jail()); len(names) != 1 || names[0] != "y.csv.part" {
		t.Errorf("files after failed rename: %v, want [y.csv.part]", names)
	}

	// The session is still usable, and a retry succeeds once the callback does.
	ts.rec.setFail(nil)
	if err := c.Stor("x.csv", strings.NewReader("recipient,message\n")); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if err := c.Rename("y.csv.part", "y.csv"); err != nil {
		t.Fatalf("retry rename: %v", err)
	}
}

func TestTooLargeUploadRemoved(t *testing.T) {
	ts := mustOpenServer(t, func(o *Options) { o.MaxUploadBytes = 100_000 })
	c := ts.dial(t)
	if err := c.Stor("exact.csv", bytes.NewReader(make([]byte, 100_000))); err != nil {
		t.Fatalf("upload at the limit: %v", err)
	}
	err := c.Stor("big.csv", bytes.NewReader(make([]byte, 5_000_000)))
	if err == nil {
		t.Fatal("oversized upload accepted")
	}
	if code := replyCode(err); code != 552 {
		t.Errorf("reply = %v, want 552 (exceeded storage allocation)", err)
	}
	if _, err := os.Stat(filepath.Join(ts.jail(), "big.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("big.csv exists: %v", err)
	}
	testenv.Wait(t, "too_large event", func() bool { return ts.ev.get("upload:too_large") == 1 })
	if names := filesIn(t, ts.jail()); len(names) != 0 {
		t.Errorf("files: %v, want none (exact.csv is queued)", names)
	}
	if q := ts.queued(t); len(q) != 1 {
		t.Errorf("queue holds %d files, want exact.csv only", len(q))
	}
	if n := len(ts.rec.list()); n != 1 {
		t.Errorf("OnUpload calls = %d, want 1", n)
	}
	// The control connection survives the refused upload.
	if err := c.NoOp(); err != nil {
		t.Errorf("NOOP after refused upload: %v", err)
	}
}

// Every way an upload can be interrupted leaves no file and no trigger.
func TestInterruptedUploadsLeaveNothing(t *testing.T) {
	for _, tc := range []struct {
		name      string
		idle      time.Duration
		interrupt func(t *testing.T, c *rawClient, data io.WriteCloser)
		wantCodes []int // replies after the interruption, in order
	}{
		{
			name: "data connection reset",
			interrupt: func(t *testing.T, c *rawClient, data io.WriteCloser) {
				_ = data.(interface{ SetLinger(int) error }).SetLinger(0)
				_ = data.Close() // RST
			},
			wantCodes: []int{550},
		},
		{
			name: "ABOR",
			interrupt: func(t *testing.T, c *rawClient, data io.WriteCloser) {
				c.send("ABOR")
			},
			wantCodes: []int{426, 226},
		},
		{
			name: "stalled data connection",
			idle: 300 * time.Millisecond,
			interrupt: func(t *testing.T, c *rawClient, data io.WriteCloser) {
				// Send nothing more; keep the connection open.
			},
			wantCodes: []int{550},
		},
		{
			name: "control connection dropped",
			interrupt: func(t *testing.T, c *rawClient, data io.WriteCloser) {
				_ = c.tp.Close()
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := mustOpenServer(t, func(o *Options) {
				if tc.idle > 0 {
					o.IdleTimeout = tc.idle
				}
			})
			c := dialRaw(t, ts.Addr())
			c.login()
			if code, msg := c.cmd("MKD in"); code != 257 {
				t.Fatalf("MKD: %d %s", code, msg)
			}
			data := c.startStor("in/x.csv")
			if _, err := data.Write(randomBytes(t, 200_000)); err != nil {
				t.Fatal(err)
			}
			// The partial upload is on disk, under a hidden name.
			testenv.Wait(t, "temp file", func() bool {
				names := filesIn(t, filepath.Join(ts.jail(), "in"))
				return len(names) == 1 && strings.HasPrefix(names[0], tempPrefix)
			})
			tc.interrupt(t, c, data)
			for _, want := range tc.wantCodes {
				if code, msg := c.read(); code != want {
					t.Fatalf("reply %d %s, want %d", code, msg, want)
				}
			}
			testenv.Wait(t, "aborted event", func() bool { return ts.ev.get("upload:aborted") == 1 })
			if names := filesIn(t, filepath.Join(ts.jail(), "in")); len(names) != 0 {
				t.Errorf("files left: %v", names)
			}
			if n := len(ts.rec.list()); n != 0 {
				t.Errorf("OnUpload called %d times", n)
			}
		})
	}
}

// Documents the limit of what a server can know: a client that closes its
// data connection gracefully in the middle of a file is indistinguishable
// from one that sent all of it. The server stores and triggers the
// truncated file; only its content can tell (see the package doc).
func TestGracefulCloseMidFileLooksComplete(t *testing.T) {
	ts := mustOpenServer(t, nil)
	c := dialRaw(t, ts.Addr())
	c.login()
	data := c.startStor("x.csv")
	if _, err := data.Write([]byte("recipient,message\n5512345678,ho")); err != nil {
		t.Fatal(err)
	}
	_ = data.Close() // FIN, not RST
	if code, msg := c.read(); code != 226 {
		t.Fatalf("reply %d %s, want 226", code, msg)
	}
	if got := ts.rec.list(); len(got) != 1 || got[0].Size != 31 {
		t.Fatalf("uploads = %+v, want the truncated file", got)
	}
}

func TestResumeAndAppendRefused(t *testing.T) {
	ts := mustOpenServer(t, nil)
	c := ts.dial(t)
	if err := c.Stor("x.txt", strings.NewReader("0123456789")); err != nil {
		t.Fatal(err)
	}
	if err := c.StorFrom("x.txt", strings.NewReader("abc"), 5); err == nil {
		t.Error("STOR after REST accepted")
	} else if !strings.Contains(err.Error(), "not supported") {
		t.Errorf("REST+STOR error = %v, want a clear message", err)
	}
	if err := c.Append("x.txt", strings.NewReader("abc")); err == nil {
		t.Error("APPE accepted")
	}
	if err := c.Append("new.csv", strings.NewReader("abc")); err == nil {
		t.Error("APPE of a new file accepted")
	}
	if b, _ := os.ReadFile(filepath.Join(ts.jail(), "x.txt")); string(b) != "0123456789" {
		t.Errorf("x.txt = %q, want it untouched", b)
	}
	if names := filesIn(t, ts.jail()); len(names) != 1 {
		t.Errorf("files: %v", names)
	}
	if n := len(ts.rec.list()); n != 0 {
		t.Errorf("OnUpload called %d times", n)
	}
}

func TestRefusedCommands(t *testing.T) {
	ts := mustOpenServer(t, nil)
	if err := os.WriteFile(filepath.Join(ts.jail(), "x.txt"), []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, ts.Addr())
	c.login()
	for _, cmd := range []string{
		"PORT 127,0,0,1,200,10",
		"EPRT |1|127.0.0.1|51210|",
		"SITE CHMOD 777 x.txt",
		"SITE SYMLINK /etc/passwd p",
		"SITE MKDIR d",
		"MFMT 20200101000000 x.txt",
		"STOR " + tempPrefix + "X.tmp",
		"RETR " + tempPrefix + "X.tmp",
	} {
		t.Run(cmd, func(t *testing.T) {
			if code, msg := c.cmd("%s", cmd); code < 400 {
				t.Fatalf("%s accepted: %d %s", cmd, code, msg)
			}
		})
	}
	if fi, err := os.Stat(filepath.Join(ts.jail(), "x.txt")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("x.txt mode changed: %v %v", fi.Mode(), err)
	}
	if names := filesIn(t, ts.jail()); len(names) != 1 {
		t.Errorf("files: %v", names)
	}
}

// An upload in progress is invisible: LIST does not show it, and its
// temporary name cannot be opened, renamed or deleted.
func TestUploadInProgressIsHidden(t *testing.T) {
	ts := mustOpenServer(t, nil)
	raw := dialRaw(t, ts.Addr())
	raw.login()
	data := raw.startStor("x.csv")
	if _, err := data.Write([]byte("recipient,message\n")); err != nil {
		t.Fatal(err)
	}
	var tmp string
	testenv.Wait(t, "temp file", func() bool {
		names := filesIn(t, ts.jail())
		if len(names) == 1 {
			tmp = names[0]
		}
		return tmp != ""
	})
	c := ts.dial(t)
	entries, err := c.List("/")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("LIST shows %v during an upload", entries)
	}
	if names, _ := c.NameList("/"); len(names) != 0 {
		t.Errorf("NLST shows %v during an upload", names)
	}
	if _, err := c.Retr(tmp); err == nil {
		t.Error("RETR of the temp file succeeded")
	}
	if err := c.Rename(tmp, "stolen.csv"); err == nil {
		t.Error("RNFR of the temp file succeeded")
	}
	if err := c.Delete(tmp); err == nil {
		t.Error("DELE of the temp file succeeded")
	}
	if _, err := c.FileSize(tmp); err == nil {
		t.Error("SIZE of the temp file succeeded")
	}
	_ = data.Close()
	if code, msg := raw.read(); code != 226 {
		t.Fatalf("reply %d %s", code, msg)
	}
	if n := len(ts.rec.list()); n != 1 {
		t.Errorf("OnUpload calls = %d, want 1", n)
	}
}

// Directory operations work inside the jail.
func TestDirectoryOperations(t *testing.T) {
	ts := mustOpenServer(t, nil)
	c := ts.dial(t)
	if err := c.MakeDir("a"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(ts.jail(), "a")); err != nil || fi.Mode().Perm() != dirPerm {
		t.Fatalf("MKD: %v %v", fi, err)
	}
	if err := c.ChangeDir("a"); err != nil {
		t.Fatal(err)
	}
	if err := c.Stor("f.txt", strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	if size, err := c.FileSize("/a/f.txt"); err != nil || size != 5 {
		t.Fatalf("SIZE = %d, %v", size, err)
	}
	r, err := c.Retr("f.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	_ = r.Close()
	if string(b) != "hello" {
		t.Fatalf("RETR = %q", b)
	}
	if err := c.Delete("f.txt"); err != nil {
		t.Fatal(err)
	}
	if err := c.ChangeDir("/"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveDir("a"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveDir("/"); err == nil {
		t.Error("RMD / succeeded")
	}
	if names := filesIn(t, ts.jail()); len(names) != 0 {
		t.Errorf("files: %v", names)
	}
}

// A multi-MiB upload crosses many of ReadFrom's buffers and write-back
// requests; its size and SHA-256 must still be those of the bytes sent.
func TestLargeUploadSizeAndSHA256(t *testing.T) {
	ts := mustOpenServer(t, func(o *Options) { o.MaxUploadBytes = 21<<20 + 4321 })
	c := ts.dial(t)
	data := randomBytes(t, 21<<20+4321) // exactly the cap
	if err := c.Stor("big.csv", bytes.NewReader(data)); err != nil {
		t.Fatalf("Stor: %v", err)
	}
	got := ts.rec.list()
	if len(got) != 1 {
		t.Fatalf("OnUpload calls = %d, want 1", len(got))
	}
	if got[0].Size != int64(len(data)) || got[0].SHA256 != sha256Hex(data) {
		t.Errorf("Size, SHA256 = %d, %s; want %d, %s", got[0].Size, got[0].SHA256, len(data), sha256Hex(data))
	}
	onDisk, err := os.ReadFile(ts.rec.path(got[0]))
	if err != nil || !bytes.Equal(onDisk, data) {
		t.Fatalf("file on disk differs (%d bytes, %v)", len(onDisk), err)
	}

	// One byte more is refused and leaves nothing.
	err = c.Stor("over.csv", bytes.NewReader(append(data, 'x')))
	if code := replyCode(err); code != 552 {
		t.Errorf("upload one byte over the cap: %v, want 552", err)
	}
	if names, q := filesIn(t, ts.jail()), ts.queued(t); len(names) != 0 || len(q) != 1 {
		t.Errorf("files: %v and %d queued, want none and big.csv", names, len(q))
	}
	if n := len(ts.rec.list()); n != 1 {
		t.Errorf("OnUpload calls = %d, want 1", n)
	}
}

// ReadFrom's pipeline stops and reports the first error, whether the disk
// or the connection fails, and hashes exactly what it wrote when neither does.
func TestReadFromErrors(t *testing.T) {
	data := randomBytes(t, 5<<20+7)
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	if err := os.WriteFile(name, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	// A file opened read-only: every write fails.
	ro, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	u := &upload{name: "/f", f: ro, h: sha256.New(), max: -1}
	if n, err := u.ReadFrom(bytes.NewReader(data)); err == nil || n != 0 {
		t.Errorf("ReadFrom into a read-only file = %d, %v; want 0 and an error", n, err)
	}

	// The connection fails after 3 MiB.
	w, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	boom := errors.New("connection reset")
	u = &upload{name: "/f", f: w, h: sha256.New(), max: -1}
	r := io.MultiReader(bytes.NewReader(data[:3<<20]), iotest.ErrReader(boom))
	if n, err := u.ReadFrom(r); !errors.Is(err, boom) || n != 3<<20 {
		t.Errorf("ReadFrom of a failing connection = %d, %v; want %d, %v", n, err, 3<<20, boom)
	}

	// Small reads (as from TLS records) add up to the right size and hash.
	w2, err := os.Create(filepath.Join(dir, "g"))
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	u = &upload{name: "/g", f: w2, h: sha256.New(), max: -1}
	if n, err := u.ReadFrom(iotest.HalfReader(bytes.NewReader(data))); err != nil || n != int64(len(data)) {
		t.Fatalf("ReadFrom = %d, %v; want %d, nil", n, err, len(data))
	}
	if got := hex.EncodeToString(u.h.Sum(nil)); u.size != int64(len(data)) || got != sha256Hex(data) {
		t.Errorf("size, SHA-256 = %d, %s; want %d, %s", u.size, got, len(data), sha256Hex(data))
	}
}

// TestSuppressionsFolderStays: the partner writes opt-out lists into
// suppressions/ and may remove its own files there, but the folder itself
// cannot be removed or renamed away (campaignd reads lists from it).
func TestSuppressionsFolderStays(t *testing.T) {
	ts := mustOpenServer(t, nil)
	for _, dir := range []string{"suppressions", "other"} {
		if err := os.MkdirAll(filepath.Join(ts.jail(), dir), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ts.jail(), dir, "list.txt"), []byte("5512345678\n"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	c := dialRaw(t, ts.Addr())
	c.login()
	for _, name := range []string{"suppressions", "Suppressions", "/suppressions/"} {
		if code, msg := c.cmd("RMD %s", name); code != 550 {
			t.Errorf("RMD %s: %d %s, want 550", name, code, msg)
		}
		if code, msg := c.cmd("RNFR %s", name); code != 550 {
			t.Errorf("RNFR %s: %d %s, want 550", name, code, msg)
		}
	}
	// Renaming another folder onto its name is refused too.
	if code, msg := c.cmd("RNFR other"); code != 350 {
		t.Fatalf("RNFR other: %d %s", code, msg)
	}
	if code, msg := c.cmd("RNTO suppressions"); code != 550 {
		t.Errorf("RNTO suppressions: %d %s, want 550", code, msg)
	}
	// Its files are the partner's.
	if code, msg := c.cmd("DELE suppressions/list.txt"); code != 250 {
		t.Errorf("DELE suppressions/list.txt: %d %s, want 250", code, msg)
	}
	if fi, err := os.Stat(filepath.Join(ts.jail(), "suppressions")); err != nil || !fi.IsDir() {
		t.Fatalf("suppressions/ gone: %v", err)
	}
}

// A failure of the server (the disk, the database) is told from the
// client's own mistakes: only the former is a 451 "try again later".
func TestLocalFault(t *testing.T) {
	for _, tt := range []struct {
		name  string
		err   error
		local bool
	}{
		{"EIO", &fs.PathError{Op: "write", Path: "/x", Err: syscall.EIO}, true},
		{"ENOSPC", &fs.PathError{Op: "write", Path: "/x", Err: syscall.ENOSPC}, true},
		{"database", &fs.PathError{Op: "open", Path: "/x", Err: temporaryErr{}}, true},
		{"missing directory", &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrNotExist}, false},
		{"permission", &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrPermission}, false},
		{"escapes the root", &fs.PathError{Op: "open", Path: "/x", Err: errors.New("path escapes from parent")}, false},
		{"not a directory", syscall.ENOTDIR, false},
	} {
		if got := localFault(tt.err); got != tt.local {
			t.Errorf("%s: localFault = %v, want %v", tt.name, got, tt.local)
		}
		msg := clean("stor", "/x", tt.err).Error()
		if tt.local != strings.Contains(msg, "try again later") && tt.name != "ENOSPC" {
			t.Errorf("%s: the client reads %q", tt.name, msg)
		}
	}
}

type temporaryErr struct{}

func (temporaryErr) Error() string   { return "pgfs: connection refused" }
func (temporaryErr) Temporary() bool { return true }
