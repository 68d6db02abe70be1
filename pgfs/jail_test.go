package pgfs_test

import (
	"bytes"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"campaignd/internal/testenv"
	"campaignd/pgfs"

	"github.com/spf13/afero"
)

// TestJail: an Fs on a root sees only what is under it, whatever the name
// (../, //, ./), and its errors name paths inside it, never the root.
func TestJail(t *testing.T) {
	p := testenv.StartPostgres(t)
	db, _ := mustOpen(t, p)
	all, alice, bob := db.Fs("/"), db.Fs("/users/alice"), db.Fs("/users/bob")
	for _, j := range []afero.Fs{alice, bob} {
		if err := j.MkdirAll("/", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := afero.WriteFile(bob, "/secret", []byte("bob's"), 0o600); err != nil {
		t.Fatal(err)
	}
	escapes := []string{"../bob/secret", "/../bob/secret", "../../users/bob/secret", "/../../../users/bob/secret",
		"./../bob/secret", "//..//bob/secret"}
	for _, name := range escapes {
		if b, err := afero.ReadFile(alice, name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("alice read %q: %q, %v", name, b, err)
		}
		if _, err := alice.Stat(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("alice stat %q: %v", name, err)
		}
		if err := alice.Remove(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("alice remove %q: %v", name, err)
		}
		if err := alice.Rename(name, "/stolen"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("alice rename %q: %v", name, err)
		}
	}
	// Writes through ../ land inside alice's root.
	if err := afero.WriteFile(alice, "../../users/bob/secret", []byte("alice's"), 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("write creates /users/bob under alice? %v", err)
	}
	if err := afero.WriteFile(alice, "../x", []byte("alice's"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := alice.Rename("/x", "../../users/bob/secret2"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("rename out of the jail: %v", err)
	}
	if err := alice.MkdirAll("../../users/bob/dir", 0o755); err != nil {
		t.Fatal(err)
	}
	if b, _ := afero.ReadFile(bob, "/secret"); !bytes.Equal(b, []byte("bob's")) {
		t.Errorf("bob's file is now %q", b)
	}
	names, _ := afero.ReadDir(bob, "/")
	if len(names) != 1 || names[0].Name() != "secret" {
		t.Errorf("bob's root holds %v", names)
	}
	if _, err := all.Stat("/users/alice/x"); err != nil {
		t.Errorf("alice's ../x is not at /users/alice/x: %v", err)
	}
	if _, err := all.Stat("/users/alice/users/bob/dir"); err != nil {
		t.Errorf("alice's MkdirAll ../../users/bob/dir is not under her root: %v", err)
	}
	// The root itself cannot be removed or renamed away.
	for _, err := range []error{alice.RemoveAll("/"), alice.RemoveAll(".."), alice.Remove("/"),
		alice.Rename("/", "/y"), alice.Rename("/x", "..")} {
		if !errors.Is(err, fs.ErrPermission) {
			t.Errorf("on the root: %v, want ErrPermission", err)
		}
	}
	// Errors name the path inside the jail.
	_, err := alice.Open("/nope/../../missing")
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != "/missing" || strings.Contains(err.Error(), "users") {
		t.Errorf("error %v names %q", err, pe.Path)
	}
	// Listings are sorted by bytes, like sort.Strings.
	for _, n := range []string{"b", "B", "a", "_", "a.csv", "a-1"} {
		afero.WriteFile(alice, "/sorted/"+n, nil, 0o600)
	}
	alice.Mkdir("/sorted", 0o755)
	for _, n := range []string{"b", "B", "a", "_", "a.csv", "a-1"} {
		afero.WriteFile(alice, "/sorted/"+n, nil, 0o600)
	}
	d, _ := alice.Open("/sorted")
	got, _ := d.Readdirnames(-1)
	d.Close()
	if strings.Join(got, " ") != "B _ a a-1 a.csv b" {
		t.Errorf("listing %q is not sorted by bytes", got)
	}
}

// TestSys: FileInfo.Sys() gives the file's id, which a rename keeps and a
// re-creation changes, and its change time, which a rename moves while the
// modification time stays.
func TestSys(t *testing.T) {
	p := testenv.StartPostgres(t)
	db, _ := mustOpen(t, p)
	fsys := db.Fs("/")
	sys := func(name string) (*pgfs.Sys, time.Time) {
		t.Helper()
		fi, err := fsys.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*pgfs.Sys), fi.ModTime()
	}
	afero.WriteFile(fsys, "/a", []byte("x"), 0o644)
	s1, m1 := sys("/a")
	testenv.Wait(t, "the database clock to move", func() bool {
		var later bool
		db.Pool().QueryRow(t.Context(), `SELECT clock_timestamp() > $1`, s1.Changed).Scan(&later)
		return later
	})
	fsys.Rename("/a", "/b")
	s2, m2 := sys("/b")
	if s2.ID != s1.ID || !m2.Equal(m1) || !s2.Changed.After(s1.Changed) {
		t.Errorf("after a rename: id %d→%d, mtime %v→%v, changed %v→%v", s1.ID, s2.ID, m1, m2, s1.Changed, s2.Changed)
	}
	afero.WriteFile(fsys, "/b", []byte("y"), 0o644)
	if s3, _ := sys("/b"); s3.ID == s2.ID {
		t.Error("a re-created file kept its id")
	}
	d, _ := fsys.Open("/")
	fis, _ := d.Readdir(-1)
	d.Close()
	if len(fis) != 1 || fis[0].Sys().(*pgfs.Sys).ID == 0 {
		t.Errorf("Readdir: %v", fis)
	}
}
