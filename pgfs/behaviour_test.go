package pgfs_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"campaignd/internal/testenv"

	"github.com/spf13/afero"
)

// run plays a script of operations on fsys and returns one line per step,
// so that two filesystems can be compared step by step.
func run(t *testing.T, fsys afero.Fs, script []string) []string {
	t.Helper()
	var out []string
	for _, step := range script {
		a := strings.Fields(step)
		arg := func(i int) string {
			if i < len(a) {
				return a[i]
			}
			return ""
		}
		num := func(i int) int64 { n, _ := strconv.ParseInt(arg(i), 10, 64); return n }
		var res string
		switch a[0] {
		case "write": // Create, write, Close
			f, err := fsys.Create(arg(1))
			if err == nil {
				_, err = f.WriteString(arg(2))
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			res = class(err)
		case "append":
			f, err := fsys.OpenFile(arg(1), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err == nil {
				_, err = f.WriteString(arg(2))
				f.Close()
			}
			res = class(err)
		case "excl":
			f, err := fsys.OpenFile(arg(1), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err == nil {
				f.Close()
			}
			res = class(err)
		case "openw": // open for writing without creating
			f, err := fsys.OpenFile(arg(1), os.O_WRONLY, 0)
			if err == nil {
				f.Close()
			}
			res = class(err)
		case "writeat": // REST-like: write at an offset without truncating
			f, err := fsys.OpenFile(arg(1), os.O_WRONLY|os.O_CREATE, 0o644)
			if err == nil {
				_, err = f.WriteAt([]byte(arg(3)), num(2))
				f.Close()
			}
			res = class(err)
		case "seekwrite": // REST+STOR as ftpserverlib does it
			f, err := fsys.OpenFile(arg(1), os.O_WRONLY|os.O_CREATE, 0o644)
			if err == nil {
				if _, err = f.Seek(num(2), io.SeekStart); err == nil {
					_, err = f.Write([]byte(arg(3)))
				}
				f.Close()
			}
			res = class(err)
		case "truncate":
			f, err := fsys.OpenFile(arg(1), os.O_RDWR, 0)
			if err == nil {
				err = f.Truncate(num(2))
				f.Close()
			}
			res = class(err)
		case "big": // Create and write SIZE pattern bytes in odd-sized writes
			f, err := fsys.Create(arg(1))
			if err == nil {
				_, err = io.CopyBuffer(struct{ io.Writer }{f}, newPattern(num(2)), make([]byte, 70_001))
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			res = class(err)
		case "sum": // size and SHA-256 of the content, read in odd-sized reads
			f, err := fsys.Open(arg(1))
			if err == nil {
				h := sha256.New()
				var n int64
				n, err = io.CopyBuffer(h, dirty{f}, make([]byte, 50_003))
				f.Close()
				res = fmt.Sprintf("%d %x ", n, h.Sum(nil)[:8])
			}
			res += class(err)
		case "read":
			b, err := afero.ReadFile(fsys, arg(1))
			res = class(err) + " " + strconv.Quote(string(b))
		case "readat":
			f, err := fsys.Open(arg(1))
			var b []byte
			if err == nil {
				b = bytes.Repeat([]byte{'#'}, int(num(3))) // a read must overwrite all it returns
				var n int
				n, err = f.ReadAt(b, num(2))
				b = b[:n]
				f.Close()
			}
			res = class(err) + " " + strconv.Quote(string(b))
		case "seekend":
			f, err := fsys.Open(arg(1))
			var off int64
			if err == nil {
				off, err = f.Seek(-num(2), io.SeekEnd)
				f.Close()
			}
			res = fmt.Sprint(class(err), " ", off)
		case "readw": // read from a write-only handle
			f, err := fsys.OpenFile(arg(1), os.O_WRONLY, 0)
			if err == nil {
				_, err = f.Read(make([]byte, 1))
				f.Close()
			}
			res = class(err)
		case "stat":
			fi, err := fsys.Stat(arg(1))
			res = class(err)
			if err == nil {
				if arg(1) != "/" {
					res += " " + fi.Name()
				}
				res += fmt.Sprintf(" dir=%v", fi.IsDir())
				if !fi.IsDir() {
					res += fmt.Sprintf(" size=%d", fi.Size())
				}
			}
		case "fstat": // Stat of an open handle after writing to it
			f, err := fsys.OpenFile(arg(1), os.O_RDWR|os.O_CREATE, 0o644)
			if err == nil {
				f.WriteString(arg(2))
				var fi os.FileInfo
				if fi, err = f.Stat(); err == nil {
					res = fmt.Sprintf("size=%d ", fi.Size())
				}
				f.Close()
			}
			res += class(err)
		case "mode":
			fi, err := fsys.Stat(arg(1))
			res = class(err)
			if err == nil {
				res += " " + fi.Mode().Perm().String()
			}
		case "chmod":
			m, _ := strconv.ParseUint(arg(2), 8, 32)
			res = class(fsys.Chmod(arg(1), os.FileMode(m)))
		case "chtimes":
			at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
			res = class(fsys.Chtimes(arg(1), at, at))
			if fi, err := fsys.Stat(arg(1)); err == nil {
				res += " " + fi.ModTime().UTC().Format(time.RFC3339)
			}
		case "mkdir":
			res = class(fsys.Mkdir(arg(1), 0o755))
		case "mkdirall":
			res = class(fsys.MkdirAll(arg(1), 0o755))
		case "remove":
			res = class(fsys.Remove(arg(1)))
		case "removeall":
			res = class(fsys.RemoveAll(arg(1)))
		case "rename":
			res = class(fsys.Rename(arg(1), arg(2)))
		case "ls": // Readdir(-1), dirs with a trailing /
			f, err := fsys.Open(arg(1))
			var names []string
			if err == nil {
				var fis []os.FileInfo
				fis, err = f.Readdir(-1)
				for _, fi := range fis {
					n := fi.Name()
					if fi.IsDir() {
						n += "/"
					}
					names = append(names, n)
				}
				f.Close()
			}
			sort.Strings(names) // os lists in directory order
			res = class(err) + " " + strings.Join(names, ",")
		case "lsn": // Readdirnames(n) until the end
			f, err := fsys.Open(arg(1))
			var parts, all []string
			if err == nil {
				for {
					names, err := f.Readdirnames(int(num(2)))
					all = append(all, names...)
					if len(names) > 0 {
						parts = append(parts, strconv.Itoa(len(names)))
					}
					if err != nil {
						parts = append(parts, class(err))
						break
					}
				}
				f.Close()
			}
			sort.Strings(all)
			res = class(err) + " " + strings.Join(parts, "|") + " " + strings.Join(all, ",")
		case "readdir-file":
			f, err := fsys.Open(arg(1))
			if err == nil {
				_, err = f.Readdir(-1)
				f.Close()
			}
			res = class(err)
		case "closed": // use after Close
			f, err := fsys.Create(arg(1))
			if err == nil {
				f.Close()
				_, err = f.Write([]byte("x"))
			}
			res = class(err)
		default:
			t.Fatalf("unknown step %q", step)
		}
		out = append(out, step+" -> "+res)
	}
	return out
}

// dirty fills the buffer with garbage before each Read, so that a read
// that returns bytes it did not write (a hole left unzeroed) shows.
type dirty struct{ r io.Reader }

func (d dirty) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = 0xA5
	}
	return d.r.Read(b)
}

// TestLikeOsFs plays the same scripts on pgfs and on the local disk
// (afero.OsFs under a temporary directory) and wants the same results: the
// same errors (by errors.Is), bytes, sizes, listings.
func TestLikeOsFs(t *testing.T) {
	p := testenv.StartPostgres(t)
	db, _ := mustOpen(t, p)
	cases := []struct {
		name   string
		script []string
	}{
		{"create read stat", []string{"write /a.csv hello", "read /a.csv", "stat /a.csv", "stat /", "read /nope", "stat /nope"}},
		{"create truncates", []string{"write /a abcdef", "write /a xy", "read /a"}},
		{"append", []string{"append /a one", "append /a two", "read /a", "stat /a"}},
		{"excl", []string{"excl /a", "excl /a", "write /b x", "excl /b", "mkdir /d", "excl /d"}},
		{"open for write needs the file", []string{"openw /a", "write /a x", "openw /a"}},
		{"write at offset", []string{"write /a 0123456789", "writeat /a 3 XY", "read /a", "writeat /a 12 Z", "read /a", "stat /a"}},
		{"rest seek write", []string{"write /a 0123456789", "seekwrite /a 4 abc", "read /a", "seekwrite /b 2 q", "read /b"}},
		{"truncate", []string{"write /a 0123456789", "truncate /a 4", "read /a", "truncate /a 6", "read /a", "truncate /a 0", "stat /a"}},
		{"readat and seek end", []string{"write /a 0123456789", "readat /a 2 3", "readat /a 8 5", "readat /a 20 1", "seekend /a 3"}},
		{"read from write-only", []string{"write /a x", "readw /a"}},
		{"fstat sees own writes", []string{"fstat /a hello", "stat /a"}},
		{"in a directory", []string{"write /d/a x", "mkdir /d", "write /d/a x", "read /d/a", "mkdir /d", "mkdir /d/e/f", "write /d/a/b x"}},
		{"mkdirall", []string{"mkdirall /a/b/c", "mkdirall /a/b/c", "stat /a/b", "write /a/f x", "mkdirall /a/f/g", "ls /a"}},
		{"listing sorted", []string{"write /b x", "write /a x", "mkdir /c", "write /B x", "write /c/z x", "ls /", "ls /c", "ls /nope", "lsn / 2", "lsn /c 5", "readdir-file /a"}},
		{"remove", []string{"write /a x", "remove /a", "stat /a", "remove /a", "mkdir /d", "write /d/f x", "remove /d", "remove /d/f", "remove /d", "ls /"}},
		{"removeall", []string{"mkdirall /d/e/f", "write /d/e/f/x 1", "write /d/y 2", "write /dd 3", "removeall /d", "ls /", "removeall /d", "removeall /dd", "ls /"}},
		{"rename file", []string{"write /a 1", "rename /a /b", "stat /a", "read /b", "rename /a /c", "rename /b /nodir/c"}},
		{"rename replaces file", []string{"write /a new", "write /b old", "rename /a /b", "read /b", "ls /"}},
		{"rename onto itself", []string{"write /a x", "rename /a /a", "read /a"}},
		{"rename dir", []string{"mkdirall /d/e", "write /d/e/f x", "write /d/g y", "rename /d /z", "ls /", "ls /z", "read /z/e/f", "stat /d/e/f", "write /d2 q", "rename /z /d2"}},
		{"rename dir over dirs", []string{"mkdir /a", "write /a/x 1", "mkdir /b", "rename /a /b", "ls /b", "mkdir /c", "write /c/y 2", "rename /b /c", "rename /c/y /b"}},
		{"rename dir into itself", []string{"mkdir /a", "rename /a /a/b"}},
		{"rename prefix siblings", []string{"mkdir /a", "mkdir /ab", "write /a/x 1", "write /ab/y 2", "rename /a /c", "ls /ab", "ls /c"}},
		{"chmod", []string{"write /a x", "chmod /a 600", "mode /a", "chmod /nope 600"}},
		{"chtimes", []string{"write /a x", "chtimes /a", "chtimes /nope"}},
		{"use after close", []string{"closed /a"}},
		// Across chunks (256 KiB): holes, partial rewrites, truncation.
		{"big file", []string{"big /a 1000000", "sum /a", "stat /a", "readat /a 262140 8", "seekend /a 10"}},
		{"big holes", []string{"writeat /a 600000 tail", "sum /a", "readat /a 262142 4", "readat /a 599998 6",
			"writeat /a 262143 XY", "sum /a", "readat /a 262142 4"}},
		{"big rewrite", []string{"big /a 800000", "writeat /a 262000 " + strings.Repeat("z", 1000), "sum /a",
			"seekwrite /a 524287 q", "sum /a", "append /a more", "sum /a"}},
		{"big truncate", []string{"big /a 800000", "truncate /a 524289", "sum /a", "truncate /a 262144", "sum /a",
			"truncate /a 700000", "sum /a", "readat /a 262143 3", "truncate /a 1", "sum /a"}},
		{"dot-dot inside", []string{"write a/../b y", "read /b"}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := run(t, afero.NewBasePathFs(afero.NewOsFs(), t.TempDir()), c.script)
			pg := db.Fs(fmt.Sprintf("/case%d", i))
			if err := pg.MkdirAll("/", 0o755); err != nil {
				t.Fatal(err)
			}
			got := run(t, pg, c.script)
			for j := range want {
				if got[j] != want[j] {
					t.Errorf("step %d:\n got  %s\n want %s", j, got[j], want[j])
				}
			}
		})
	}
}
