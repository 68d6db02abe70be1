package ftpd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jlaffaye/ftp"
	"github.com/spf13/afero"

	"campaignd"
	"campaignd/internal/testenv"
	"campaignd/pgfs"
)

// The sessions' behaviour is the same on the disk jail (the default) and on
// a shared Fs (Options.Jail, pgfs in a cluster): each test below runs on
// both. view is the test user's jail as the test reads it behind the
// server's back.

type jailBackend struct {
	name string
	// setup points o at a fresh jail store and returns the test user's jail.
	setup func(t *testing.T, o *Options) afero.Fs
}

func jailBackends(t *testing.T) []jailBackend {
	var (
		once sync.Once
		pg   *testenv.Postgres
	)
	return []jailBackend{
		{"disk", func(t *testing.T, o *Options) afero.Fs {
			return afero.NewBasePathFs(afero.NewOsFs(), filepath.Join(o.Root, testUser))
		}},
		{"pgfs", func(t *testing.T, o *Options) afero.Fs {
			once.Do(func() { pg = testenv.StartPostgres(t) }) // one server for the test function
			if pg == nil {
				t.Skip("no PostgreSQL")
			}
			pool, err := pgxpool.New(context.Background(), pg.NewDatabase(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			db, err := pgfs.Open(context.Background(), pool, pgfs.Options{})
			if err != nil {
				t.Fatal(err)
			}
			o.Jail = func(user string) (afero.Fs, error) { return db.Fs("/" + user), nil }
			return db.Fs("/" + testUser)
		}},
	}
}

// eachJail runs f on a server over each backend; mutate may change the
// options and prepare the jail before the server opens.
func eachJail(t *testing.T, mutate func(o *Options, view afero.Fs), f func(t *testing.T, ts *testServer, view afero.Fs)) {
	for _, b := range jailBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			var view afero.Fs
			ts := mustOpenServer(t, func(o *Options) {
				view = b.setup(t, o)
				if mutate != nil {
					mutate(o, view)
				}
			})
			ts.rec.mu.Lock()
			ts.rec.fs = view
			ts.rec.mu.Unlock()
			f(t, ts, view)
		})
	}
}

// tree lists every file (not directory) in view, hidden ones included, as
// path → content.
func tree(t *testing.T, view afero.Fs) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := afero.Walk(view, "/", func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			b, err := afero.ReadFile(view, p)
			if err != nil {
				return err
			}
			out[filepath.ToSlash(p)] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// names lists a directory over FTP.
func names(t *testing.T, c *ftp.ServerConn, dir string) []string {
	t.Helper()
	entries, err := c.List(dir)
	if err != nil {
		t.Fatalf("LIST %s: %v", dir, err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, fmt.Sprintf("%s:%d", e.Name, e.Size))
	}
	sort.Strings(out)
	return out
}

// STOR of a .csv: queued under a name of its own, complete in the jail
// before OnUpload runs, before the 226; other names are stored, listed,
// downloaded, renamed (a rename to .csv triggers) and deleted; uploads in
// progress and the queue never show.
func TestJailSessionOps(t *testing.T) {
	eachJail(t, nil, func(t *testing.T, ts *testServer, view afero.Fs) {
		c := ts.dial(t)
		if err := c.MakeDir("in"); err != nil {
			t.Fatal(err)
		}
		data := randomBytes(t, 1<<20+17)
		if err := c.Stor("/in/x.csv", bytes.NewReader(data)); err != nil {
			t.Fatalf("STOR: %v", err)
		}
		got := ts.rec.list()
		if len(got) != 1 || !ts.rec.wasInPlace(0) {
			t.Fatalf("OnUpload before the 226: %d calls, in place %v", len(got), len(got) == 1 && ts.rec.wasInPlace(0))
		}
		u := got[0]
		if u.Path != "/in/x.csv" || u.Size != int64(len(data)) || u.SHA256 != sha256Hex(data) ||
			!strings.HasPrefix(u.Stored, "/"+queueDir+"/") {
			t.Fatalf("Upload = %+v", u)
		}
		if b, err := afero.ReadFile(view, u.Stored); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("queued bytes differ: %v", err)
		}
		if n := names(t, c, "/in"); len(n) != 0 {
			t.Errorf("LIST /in = %v, want nothing (x.csv waits in the queue)", n)
		}

		if err := c.Stor("notes.txt", strings.NewReader("hello")); err != nil {
			t.Fatal(err)
		}
		if n := names(t, c, "/"); !slices.Equal(onlyNames(n), []string{"in", "notes.txt"}) || !slices.Contains(n, "notes.txt:5") {
			t.Errorf("LIST / = %v", n)
		}
		if s := testenv.Retr(t, c, "notes.txt"); s != "hello" {
			t.Errorf("RETR = %q", s)
		}
		if sz, err := c.FileSize("notes.txt"); err != nil || sz != 5 {
			t.Errorf("SIZE = %d, %v", sz, err)
		}
		// A rename to a .csv name triggers: the file goes to the queue.
		if err := c.Rename("notes.txt", "/in/y.csv"); err != nil {
			t.Fatal(err)
		}
		if got := ts.rec.list(); len(got) != 2 || got[1].Via != campaignd.ViaRename || got[1].Path != "/in/y.csv" || !ts.rec.wasInPlace(1) {
			t.Fatalf("rename trigger: %+v", got)
		}
		if err := c.Stor("a.txt", strings.NewReader("a")); err != nil {
			t.Fatal(err)
		}
		if err := c.Rename("a.txt", "/in/b.txt"); err != nil {
			t.Fatal(err)
		}
		if s := testenv.Retr(t, c, "/in/b.txt"); s != "a" {
			t.Errorf("renamed file = %q", s)
		}
		if err := c.Delete("/in/b.txt"); err != nil {
			t.Fatal(err)
		}
		if err := c.RemoveDir("in"); err != nil {
			t.Fatal(err)
		}
		files := tree(t, view)
		if len(files) != 2 {
			t.Errorf("jail holds %v, want the two queued files", keys(files))
		}
		for p := range files {
			if !strings.HasPrefix(p, "/"+queueDir+"/") {
				t.Errorf("left over: %s", p)
			}
		}
		for _, n := range names(t, c, "/") {
			if strings.HasPrefix(n, tempPrefix) {
				t.Errorf("LIST shows %s", n)
			}
		}
		if _, err := c.Retr(u.Stored); err == nil {
			t.Error("RETR of a queued file succeeded")
		}
	})
}

func onlyNames(entries []string) []string {
	var out []string
	for _, e := range entries {
		n, _, _ := strings.Cut(e, ":")
		if n != campaignd.SuppressionsDir {
			out = append(out, n)
		}
	}
	return out
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// processed/, rejected/ and reports/ can be listed and downloaded, never
// changed; suppressions/ takes files but cannot go away.
func TestJailReadOnlyDirs(t *testing.T) {
	prepare := func(o *Options, view afero.Fs) {
		o.Folders = []string{campaignd.SuppressionsDir}
		if err := view.MkdirAll("/"+campaignd.ProcessedDir, 0o750); err != nil {
			panic(err)
		}
		if err := afero.WriteFile(view, "/"+campaignd.ProcessedDir+"/x.csv", []byte("done"), 0o640); err != nil {
			panic(err)
		}
	}
	eachJail(t, prepare, func(t *testing.T, ts *testServer, view afero.Fs) {
		c := ts.dial(t)
		if n := onlyNames(names(t, c, "/"+campaignd.ProcessedDir)); !slices.Equal(n, []string{"x.csv"}) {
			t.Errorf("LIST processed = %v", n)
		}
		if s := testenv.Retr(t, c, "/processed/x.csv"); s != "done" {
			t.Errorf("RETR = %q", s)
		}
		for what, err := range map[string]error{
			"STOR": c.Stor("/processed/y.csv", strings.NewReader("x")),
			"DELE": c.Delete("/processed/x.csv"),
			"RNFR": c.Rename("/processed/x.csv", "/x.csv"),
			"MKD":  c.MakeDir("/reports"),
			"RMD":  c.RemoveDir("/" + campaignd.SuppressionsDir),
			"RNTO": c.Rename("/"+campaignd.SuppressionsDir, "/s"),
		} {
			if code := replyCode(err); code != 550 && code != 553 {
				t.Errorf("%s: %v, want a 550", what, err)
			}
		}
		if err := c.Stor("/suppressions/list.txt", strings.NewReader("1")); err != nil {
			t.Errorf("STOR into suppressions/: %v", err)
		}
		files := tree(t, view)
		if files["/processed/x.csv"] != "done" || len(files) != 2 {
			t.Errorf("jail = %v", files)
		}
	})
}

// ABOR in the middle of a STOR keeps nothing: no trigger, no file, no
// temporary file, nothing queued.
func TestJailABORMidSTOR(t *testing.T) {
	eachJail(t, nil, func(t *testing.T, ts *testServer, view afero.Fs) {
		c := dialRaw(t, ts.Addr())
		c.login()
		payload := randomBytes(t, 3<<20+7)
		for run := range 2 {
			data := c.startStor("x.csv")
			if _, err := data.Write(payload[:len(payload)/2]); err != nil {
				t.Fatal(err)
			}
			c.send("ABOR")
			_ = data.Close()
			c.untilReply(t, 226)
			testenv.Wait(t, "aborted event", func() bool { return ts.ev.get("upload:aborted") == run+1 })
		}
		if n := len(ts.rec.list()); n != 0 {
			t.Errorf("OnUpload called %d times", n)
		}
		if files := tree(t, view); len(files) != 0 {
			t.Errorf("left in the jail: %v", keys(files))
		}
	})
}

// Concurrent uploads of one name: each .csv is queued with its own bytes;
// a name that does not trigger ends whole, one upload's bytes, never torn.
func TestJailConcurrentReupload(t *testing.T) {
	eachJail(t, nil, func(t *testing.T, ts *testServer, view afero.Fs) {
		const n = 6
		bodies := make([][]byte, n)
		want := map[string]bool{}
		for i := range bodies {
			bodies[i] = randomBytes(t, 300<<10+1000*i) // over one pgfs chunk
			want[sha256Hex(bodies[i])] = true
		}
		for _, name := range []string{"same.csv", "same.txt"} {
			clients := make([]*ftp.ServerConn, n)
			for i := range clients {
				clients[i] = ts.dial(t)
			}
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i, c := range clients {
				wg.Go(func() { errs[i] = c.Stor(name, bytes.NewReader(bodies[i])) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("STOR %s: %v", name, err)
			}
		}
		got := ts.rec.list()
		if len(got) != n {
			t.Fatalf("OnUpload calls = %d, want %d", len(got), n)
		}
		seen := map[string]bool{}
		for i, u := range got {
			b, err := afero.ReadFile(view, u.Stored)
			if err != nil || sha256Hex(b) != u.SHA256 || !want[u.SHA256] || seen[u.SHA256] || !ts.rec.wasInPlace(i) {
				t.Errorf("upload %d: queued bytes are not its own (%v)", i, err)
			}
			seen[u.SHA256] = true
		}
		b, err := afero.ReadFile(view, "/same.txt")
		if err != nil || !want[sha256Hex(b)] {
			t.Errorf("same.txt is not one upload's bytes (%d bytes, %v)", len(b), err)
		}
		if files := tree(t, view); len(files) != n+1 {
			t.Errorf("jail holds %d files, want %d: %v", len(files), n+1, keys(files))
		}
	})
}

// Open sweeps queued files no job claims; on a shared jail only those
// queued longer than QueueSweepAge ago, since a young one may be another
// live node's upload whose job is being recorded. On a shared jail it also
// removes the temporary files of uploads not written to for as long.
func TestJailSweep(t *testing.T) {
	for _, late := range []bool{false, true} {
		t.Run(fmt.Sprintf("late=%v", late), func(t *testing.T) {
			prepare := func(o *Options, view afero.Fs) {
				if err := view.MkdirAll("/"+queueDir, 0o750); err != nil {
					panic(err)
				}
				for _, n := range []string{"KEEP", "ORPHAN"} {
					if err := afero.WriteFile(view, "/"+queueDir+"/"+n, []byte(n), 0o640); err != nil {
						panic(err)
					}
				}
				// An upload cut short by a node that died, in a folder.
				if err := view.MkdirAll("/in/deep", 0o750); err != nil {
					panic(err)
				}
				if err := afero.WriteFile(view, "/in/deep/"+tempPrefix+"X.tmp", []byte("part"), 0o640); err != nil {
					panic(err)
				}
				o.Queued = func(_, stored string) bool { return stored == "/"+queueDir+"/KEEP" }
				if late {
					o.Now = func() time.Time { return time.Now().Add(DefaultQueueSweepAge + time.Minute) }
				}
			}
			eachJail(t, prepare, func(t *testing.T, ts *testServer, view afero.Fs) {
				want := []string{"/" + queueDir + "/KEEP"}
				if ts.opts.Jail != nil && !late {
					want = append(want, "/"+queueDir+"/ORPHAN") // too young to tell
				}
				if ts.opts.Jail == nil || !late {
					// On disk temporary files stay, as they always did; on
					// a shared jail a young one may be a live upload.
					want = append(want, "/in/deep/"+tempPrefix+"X.tmp")
				}
				slices.Sort(want)
				if got := keys(tree(t, view)); !slices.Equal(got, want) {
					t.Errorf("queue after Open = %v, want %v", got, want)
				}
			})
		})
	}
}
