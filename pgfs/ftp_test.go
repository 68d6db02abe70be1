package pgfs_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"sort"
	"testing"
	"time"

	"campaignd/internal/testenv"
	"campaignd/pgfs"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/jlaffaye/ftp"
	"github.com/spf13/afero"
)

// ftpDriver is the smallest MainDriver: every user gets pgfs under
// /users/<name>, as ftpd's jails would be.
type ftpDriver struct{ db *pgfs.DB }

func (d *ftpDriver) GetSettings() (*ftpserver.Settings, error) {
	return &ftpserver.Settings{ListenAddr: "127.0.0.1:0", DefaultTransferType: ftpserver.TransferTypeBinary}, nil
}
func (d *ftpDriver) ClientConnected(ftpserver.ClientContext) (string, error) { return "pgfs test", nil }
func (d *ftpDriver) ClientDisconnected(ftpserver.ClientContext)              {}
func (d *ftpDriver) GetTLSConfig() (*tls.Config, error)                      { return nil, errors.New("no TLS") }
func (d *ftpDriver) AuthUser(_ ftpserver.ClientContext, user, _ string) (ftpserver.ClientDriver, error) {
	jail := d.db.Fs("/users/" + user)
	if err := jail.MkdirAll("/", 0o755); err != nil {
		return nil, err
	}
	return jail, nil
}

// TestFTPServer runs the real FTP server (ftpserverlib) over pgfs and drives
// it with a real client: STOR, APPE, REST+STOR, RETR, LIST, RNFR/RNTO, DELE,
// MKD. A 226 means the file is on the database: another node's pool reads it.
func TestFTPServer(t *testing.T) {
	p := testenv.StartPostgres(t)
	dsn := p.NewDatabase(t)
	db, err := pgfs.Open(t.Context(), mustPool(t, dsn), pgfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := ftpserver.NewFtpServer(&ftpDriver{db: db})
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Stop() })

	c, err := ftp.Dial(srv.Addr(), ftp.DialWithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	if err := c.Login("alice", "x"); err != nil {
		t.Fatal(err)
	}
	other := pgfs.New(mustPool(t, dsn), "/users/alice") // another node
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	want := func(name string, content []byte) {
		t.Helper()
		got, err := afero.ReadFile(other, name)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("%s on another node: %d bytes %.40q, %v; want %d bytes %.40q", name, len(got), got, err, len(content), content)
		}
	}
	big := make([]byte, 3*pgfs.ChunkSize+777)
	io.ReadFull(newPattern(int64(len(big))), big)

	must("MKD", c.MakeDir("/in"))
	must("STOR", c.Stor("/in/a.csv", bytes.NewReader(big)))
	want("/in/a.csv", big)
	must("APPE", c.Append("/in/a.csv", bytes.NewReader([]byte("tail\n"))))
	want("/in/a.csv", append(big[:len(big):len(big)], "tail\n"...))
	must("STOR", c.Stor("/in/b.csv", bytes.NewReader(big[:pgfs.ChunkSize+10])))
	must("REST+STOR", c.StorFrom("/in/b.csv", bytes.NewReader(big[pgfs.ChunkSize+10:]), uint64(pgfs.ChunkSize+10)))
	want("/in/b.csv", big)

	r, err := c.Retr("/in/b.csv")
	must("RETR", err)
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("RETR: %d bytes, %v", len(got), err)
	}
	size, err := c.FileSize("/in/b.csv")
	if err != nil || size != int64(len(big)) {
		t.Fatalf("SIZE: %d, %v", size, err)
	}

	must("RNFR/RNTO", c.Rename("/in/b.csv", "/in/c.csv"))
	must("RNFR/RNTO over a file", c.Rename("/in/c.csv", "/in/a.csv"))
	want("/in/a.csv", big)
	entries, err := c.List("/in")
	must("LIST", err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
		if e.Name == "a.csv" && e.Size != uint64(len(big)) {
			t.Errorf("LIST: a.csv has size %d", e.Size)
		}
	}
	sort.Strings(names)
	if len(names) != 1 || names[0] != "a.csv" {
		t.Fatalf("LIST /in: %v", names)
	}
	must("DELE", c.Delete("/in/a.csv"))
	if _, err := other.Stat("/in/a.csv"); err == nil {
		t.Fatal("DELE: the file is still there")
	}
	if err := c.Delete("/in/a.csv"); err == nil {
		t.Fatal("DELE of a missing file succeeded")
	}
	if _, err := c.Retr("/../bob/x"); err == nil {
		t.Fatal("RETR outside the jail succeeded")
	}
}
