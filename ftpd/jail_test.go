package ftpd

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// jailFixture places, around and inside the jail, things a client must not
// reach: a file next to the jail, another user's file, a directory elsewhere,
// and symlinks inside the jail pointing at all of them.
type jailFixture struct {
	ts      *testServer
	outside string // a directory outside Root
}

func newJailFixture(t *testing.T) *jailFixture {
	t.Helper()
	ts := mustOpenServer(t, func(o *Options) {
		o.Users = append(o.Users, User{Name: testUser + "2", PasswordHash: testHash()})
	})
	outside := t.TempDir()
	write := func(p, content string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(outside, "passwd"), "root:x:0:0")
	write(filepath.Join(ts.root, "secret.txt"), "next to the jail")
	write(filepath.Join(ts.root, testUser+"2", "theirs.txt"), "another user's")
	write(filepath.Join(ts.jail(), "mine.txt"), "mine")
	for name, target := range map[string]string{
		"etc":        "/etc",                                      // absolute, outside
		"out":        outside,                                     // absolute, outside
		"up":         "..",                                        // relative, climbs out
		"secretlink": "../secret.txt",                             // relative, to a file outside
		"neighbour":  filepath.Join("..", testUser+"2"),           // the sibling jail
		"inlink":     "mine.txt",                                  // relative, inside: allowed
		"abslink":    filepath.Join(ts.jail(), "mine.txt"),        // absolute, even if inside
		"passwdlink": filepath.Join(outside, "passwd"),            // absolute, to a file
		"deep":       filepath.Join("..", "..", "..", "..", ".."), // far up
	} {
		if err := os.Symlink(target, filepath.Join(ts.jail(), name)); err != nil {
			t.Fatal(err)
		}
	}
	return &jailFixture{ts: ts, outside: outside}
}

func TestJailEscapesFail(t *testing.T) {
	f := newJailFixture(t)
	c := f.ts.dial(t)

	for _, p := range []string{
		"../secret.txt", "/../secret.txt", "/../../etc/passwd", "../../../../../../etc/passwd",
		"../" + testUser + "2/theirs.txt", "/etc/passwd", "etc/passwd", "etc/hostname",
		"out/passwd", "up/secret.txt", "secretlink", "neighbour/theirs.txt", "abslink",
		"passwdlink", "deep/etc/passwd", f.outside + "/passwd", "/" + f.outside + "/passwd",
	} {
		t.Run("RETR "+p, func(t *testing.T) {
			r, err := c.Retr(p)
			if err == nil {
				b, _ := io.ReadAll(r)
				_ = r.Close()
				t.Fatalf("RETR %s succeeded: %q", p, b)
			}
		})
	}
	for _, p := range []string{"etc", "out", "up", "neighbour", "deep", "/..", "../" + testUser + "2"} {
		t.Run("LIST "+p, func(t *testing.T) {
			entries, err := c.List(p)
			for _, e := range entries {
				if e.Name == "passwd" || e.Name == "secret.txt" || e.Name == "theirs.txt" || e.Name == testUser+"2" {
					t.Fatalf("LIST %s shows %q from outside the jail", p, e.Name)
				}
			}
			if err == nil && p != "/.." && p != "../"+testUser+"2" {
				t.Fatalf("LIST %s succeeded: %v", p, entries)
			}
		})
		t.Run("NLST "+p, func(t *testing.T) {
			names, _ := c.NameList(p)
			for _, n := range names {
				if b := filepath.Base(n); b == "passwd" || b == "secret.txt" || b == "theirs.txt" {
					t.Fatalf("NLST %s shows %q from outside the jail", p, n)
				}
			}
		})
	}
	for _, p := range []string{"out/x.csv", "etc/x.csv", "up/x.csv", "neighbour/x.csv", "deep/tmp/x.csv", "out/passwd"} {
		t.Run("STOR "+p, func(t *testing.T) {
			if err := c.Stor(p, strings.NewReader("recipient,message\n")); err == nil {
				t.Fatalf("STOR %s succeeded", p)
			}
		})
	}
	for _, p := range []string{"out/newdir", "etc/newdir", "neighbour/newdir"} {
		t.Run("MKD "+p, func(t *testing.T) {
			if err := c.MakeDir(p); err == nil {
				t.Fatalf("MKD %s succeeded", p)
			}
		})
	}
	for _, p := range []string{"out/passwd", "neighbour/theirs.txt", "../secret.txt", "etc/passwd"} {
		t.Run("DELE "+p, func(t *testing.T) {
			if err := c.Delete(p); err == nil {
				t.Fatalf("DELE %s succeeded", p)
			}
		})
	}
	t.Run("RNFR out/passwd", func(t *testing.T) {
		if err := c.Rename("out/passwd", "stolen.txt"); err == nil {
			t.Fatal("rename from outside succeeded")
		}
	})
	t.Run("RNTO out/mine.txt", func(t *testing.T) {
		if err := c.Rename("mine.txt", "out/mine.txt"); err == nil {
			t.Fatal("rename to outside succeeded")
		}
	})
	t.Run("CWD out", func(t *testing.T) {
		if err := c.ChangeDir("out"); err == nil {
			t.Fatal("CWD into a symlink to outside succeeded")
		}
	})
	t.Run("CWD ..", func(t *testing.T) {
		if err := c.ChangeDir("/../.."); err != nil {
			t.Fatal(err)
		}
		if dir, _ := c.CurrentDir(); dir != "/" {
			t.Fatalf("PWD after CWD /../.. = %q, want /", dir)
		}
	})

	// Nothing outside changed and nothing triggered.
	if names := filesIn(t, f.outside); len(names) != 1 || names[0] != "passwd" {
		t.Errorf("outside directory now holds %v", names)
	}
	if b, err := os.ReadFile(filepath.Join(f.outside, "passwd")); err != nil || string(b) != "root:x:0:0" {
		t.Errorf("outside file changed: %q %v", b, err)
	}
	if names := filesIn(t, filepath.Join(f.ts.root, testUser+"2")); len(names) != 1 {
		t.Errorf("sibling jail now holds %v", names)
	}
	if n := len(f.ts.rec.list()); n != 0 {
		t.Errorf("OnUpload called %d times", n)
	}
	// No temp file was left behind by the failed STORs.
	for _, n := range filesIn(t, f.ts.jail()) {
		if strings.HasPrefix(n, tempPrefix) {
			t.Errorf("temp file left: %s", n)
		}
	}
}

// Symlinks that stay inside the jail keep working, relative ones only.
func TestJailInsideSymlink(t *testing.T) {
	f := newJailFixture(t)
	c := f.ts.dial(t)
	r, err := c.Retr("inlink")
	if err != nil {
		t.Fatalf("RETR inlink: %v", err)
	}
	b, _ := io.ReadAll(r)
	_ = r.Close()
	if string(b) != "mine" {
		t.Fatalf("RETR inlink = %q", b)
	}
}

func TestRel(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/", "."},
		{"", "."},
		{"/in/x.csv", "in/x.csv"},
		{"in/x.csv", "in/x.csv"},
		{"/../../etc/passwd", "etc/passwd"},
		{"/a/../../b", "b"},
		{"//a//b/", "a/b"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := rel(tc.in); got != tc.want {
				t.Errorf("rel(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestTriggers(t *testing.T) {
	for _, tc := range []struct {
		name string
		path string
		want bool
	}{
		{"csv at root", "/x.csv", true},
		{"csv in dir", "/in/x.csv", true},
		{"upper case", "/in/X.CSV", true},
		{"mixed case", "/in/x.Csv", true},
		{"part file", "/in/x.csv.part", false},
		{"txt", "/in/x.txt", false},
		{"no dot", "/in/xcsv", false},
		{"processed", "/processed/x.csv", false},
		{"rejected", "/rejected/x.csv", false},
		{"reports", "/reports/x.csv", false},
		{"errors file", "/rejected/x.csv.errors.csv", false},
		{"processed any case", "/Processed/x.csv", false},
		{"processed nested", "/in/processed/x.csv", false},
		{"processed as file name", "/processed.csv", true},
		{"dir merely named like it", "/processed-old/x.csv", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := triggers(tc.path); got != tc.want {
				t.Errorf("triggers(%q) = %v, want %v", tc.path, got, tc.want)
			}
		})
	}
}

func TestHidden(t *testing.T) {
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"/in/x.csv", false},
		{"/in/" + tempPrefix + "ABC.tmp", true},
		{"/" + tempPrefix + "x/y", true},
		{"/in/.hidden", false},
	} {
		if got := hidden(tc.path); got != tc.want {
			t.Errorf("hidden(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}
