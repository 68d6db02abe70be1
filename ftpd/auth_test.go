package ftpd

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"campaignd/internal/testenv"
)

func TestLoginPlain(t *testing.T) {
	ts := mustOpenServer(t, nil)
	c := ts.dial(t)
	if _, err := c.List("/"); err != nil {
		t.Fatalf("List: %v", err)
	}
	if got := ts.ev.get("login:ok"); got != 1 {
		t.Errorf("login:ok events = %d, want 1", got)
	}
	if got := ts.ev.get("opened"); got != 1 {
		t.Errorf("opened events = %d, want 1", got)
	}
	if err := c.Quit(); err != nil {
		t.Fatalf("Quit: %v", err)
	}
	testenv.Wait(t, "connection closed event", func() bool { return ts.ev.get("closed") == 1 })
}

func TestLoginBadCredentials(t *testing.T) {
	const delay = 40 * time.Millisecond
	ts := mustOpenServer(t, func(o *Options) {
		o.FailedLoginDelay = delay
		o.BanAfter = 100
	})
	for _, tc := range []struct{ name, user, pass string }{
		{"wrong password", testUser, "wrong"},
		{"unknown user", "nobody", testPass},
		{"empty password", testUser, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := ts.dialAs(tc.user, tc.pass)
			if err == nil {
				t.Fatal("login succeeded")
			}
			if replyCode(err) != 530 {
				t.Errorf("reply = %v, want 530", err)
			}
			if elapsed := time.Since(start); elapsed < delay {
				t.Errorf("failed login answered after %v, want at least %v", elapsed, delay)
			}
		})
	}
	if got := ts.ev.get("login:bad_credentials"); got != 3 {
		t.Errorf("bad_credentials events = %d, want 3", got)
	}
	ts.dial(t) // the right password still works
}

func TestBan(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ts := mustOpenServer(t, func(o *Options) {
		o.BanAfter = 3
		o.BanWindow = time.Minute
		o.BanFor = time.Hour
		o.Now = clock.Now
	})

	// Failures spread wider than the window do not ban.
	for range 4 {
		if _, err := ts.dialAs(testUser, "wrong"); err == nil {
			t.Fatal("wrong password accepted")
		}
		clock.Advance(31 * time.Second)
	}
	ts.dial(t)

	// Three within the window do.
	for range 3 {
		if _, err := ts.dialAs(testUser, "wrong"); err == nil {
			t.Fatal("wrong password accepted")
		}
	}
	_, err := ts.dialAs(testUser, testPass)
	if err == nil {
		t.Fatal("banned address could log in")
	}
	if !strings.Contains(err.Error(), "too many failed logins") {
		t.Errorf("error = %v, want the ban message", err)
	}
	if got := ts.ev.get("login:banned"); got == 0 {
		t.Error("no banned event")
	}

	clock.Advance(time.Hour)
	ts.dial(t) // the ban has expired
}

// A connection opened before the ban is refused at login, not only at connect.
func TestBanRefusesLoginOnOpenConnection(t *testing.T) {
	ts := mustOpenServer(t, func(o *Options) { o.BanAfter = 1 })
	early, err := ftp.Dial(ts.Addr(), ftp.DialWithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer early.Quit()
	if _, err := ts.dialAs(testUser, "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}
	if err := early.Login(testUser, testPass); err == nil {
		t.Fatal("login on a connection from a banned address succeeded")
	}
}

func TestConnectionCapPerIP(t *testing.T) {
	ts := mustOpenServer(t, func(o *Options) { o.MaxConnectionsPerIP = 2 })
	c1 := ts.dial(t)
	ts.dial(t)
	if _, err := ts.dialAs(testUser, testPass); err == nil {
		t.Fatal("third connection accepted")
	} else if !strings.Contains(err.Error(), "too many connections") {
		t.Errorf("error = %v, want the connection cap message", err)
	}
	if err := c1.Quit(); err != nil {
		t.Fatal(err)
	}
	testenv.Wait(t, "a free connection slot", func() bool {
		c, err := ts.dialAs(testUser, testPass)
		if err != nil {
			return false
		}
		_ = c.Quit()
		return true
	})
}

func TestTLSExplicit(t *testing.T) {
	cert := newTestCert(t)
	ts := mustOpenServer(t, func(o *Options) {
		o.TLSMode = TLSExplicit
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert.cert}}
	})
	c := ts.dial(t, ftp.DialWithExplicitTLS(cert.clientConfig()))
	data := []byte("recipient,message\n5512345678,hola\n")
	if err := c.Stor("x.csv", bytes.NewReader(data)); err != nil {
		t.Fatalf("Stor over TLS: %v", err)
	}
	if got := ts.rec.list(); len(got) != 1 || got[0].SHA256 != sha256Hex(data) {
		t.Fatalf("uploads = %+v", got)
	}
	ts.dial(t) // plain is still allowed in explicit mode
}

func TestTLSRequired(t *testing.T) {
	cert := newTestCert(t)
	ts := mustOpenServer(t, func(o *Options) {
		o.TLSMode = TLSRequired
		o.TLSCertFile, o.TLSKeyFile = cert.certFile, cert.keyFile
	})
	if _, err := ts.dialAs(testUser, testPass); err == nil {
		t.Fatal("plain login accepted in required mode")
	}
	if got := ts.ev.get("login:tls_required"); got != 1 {
		t.Errorf("tls_required events = %d, want 1", got)
	}
	c := ts.dial(t, ftp.DialWithExplicitTLS(cert.clientConfig()))
	if err := c.Stor("x.txt", strings.NewReader("hello")); err != nil {
		t.Fatalf("Stor over TLS: %v", err)
	}
	r, err := c.Retr("x.txt")
	if err != nil {
		t.Fatalf("Retr over TLS: %v", err)
	}
	defer r.Close()
}

func TestTLSImplicit(t *testing.T) {
	cert := newTestCert(t)
	ts := mustOpenServer(t, func(o *Options) {
		o.TLSMode = TLSImplicit
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert.cert}}
		o.IdleTimeout = time.Second // also bounds the implicit handshake
	})
	c := ts.dial(t, ftp.DialWithTLS(cert.clientConfig()))
	data := randomBytes(t, 300_000)
	if err := c.Stor("big.csv", bytes.NewReader(data)); err != nil {
		t.Fatalf("Stor over implicit TLS: %v", err)
	}
	if got := ts.rec.list(); len(got) != 1 || got[0].Size != int64(len(data)) {
		t.Fatalf("uploads = %+v", got)
	}
	if q := ts.queued(t); len(q) != 1 {
		t.Fatalf("queue holds %d files, want 1", len(q))
	}
	entries, err := c.List("/") // the queue is not listed
	if err != nil || len(entries) != 0 {
		t.Fatalf("List = %v, %v", entries, err)
	}
	// A client that never starts TLS gets no greeting and is cut once the
	// handshake timeout passes.
	plain, err := net.Dial("tcp", ts.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	_ = plain.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := plain.Read(make([]byte, 100))
	if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("plain client: read %d bytes, %v; want the server to close the connection", n, err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	good := func() Options {
		return Options{Listen: "127.0.0.1:0", Root: t.TempDir(), Users: []User{{Name: testUser, PasswordHash: testHash()}}}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Options)
	}{
		{"no listen", func(o *Options) { o.Listen = "" }},
		{"no root", func(o *Options) { o.Root = "" }},
		{"user name with slash", func(o *Options) { o.Users[0].Name = "a/b" }},
		{"user name dot dot", func(o *Options) { o.Users[0].Name = ".." }},
		{"duplicate user", func(o *Options) { o.Users = append(o.Users, o.Users[0]) }},
		{"plain password", func(o *Options) { o.Users[0].PasswordHash = "secret" }},
		{"tls mode", func(o *Options) { o.TLSMode = "sometimes" }},
		{"tls without cert", func(o *Options) { o.TLSMode = TLSExplicit }},
		{"passive range", func(o *Options) { o.PassivePortStart, o.PassivePortEnd = 5000, 4000 }},
		{"public host name", func(o *Options) { o.PublicHost = "ftp.example.com" }},
		{"public host v6", func(o *Options) { o.PublicHost = "::1" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good()
			tc.mutate(&o)
			if _, err := New(o); err == nil {
				t.Fatal("New accepted invalid options")
			}
		})
	}
	if _, err := New(good()); err != nil {
		t.Fatalf("New(good) = %v", err)
	}
}

func TestOpenCreatesJail(t *testing.T) {
	ts := mustOpenServer(t, nil)
	fi, err := os.Stat(ts.jail())
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o750 {
		t.Errorf("jail mode = %v, want drwxr-x---", fi.Mode())
	}
	if ts.Addr() == "" || strings.HasSuffix(ts.Addr(), ":0") {
		t.Errorf("Addr = %q", ts.Addr())
	}
}

func TestPassivePortRangeAndPublicHost(t *testing.T) {
	// A port that was free a moment ago serves as a one-port range.
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := probe.Addr().(*net.TCPAddr).Port
	_ = probe.Close()
	ts := mustOpenServer(t, func(o *Options) {
		o.PassivePortStart, o.PassivePortEnd = port, port
		o.PublicHost = "127.0.0.2"
	})
	c := dialRaw(t, ts.Addr())
	c.login()
	code, msg := c.cmd("PASV")
	want := fmt.Sprintf("(127,0,0,2,%d,%d)", port/256, port%256)
	if code != 227 || !strings.Contains(msg, want) {
		t.Fatalf("PASV = %d %s, want %s", code, msg, want)
	}
}

func TestCloseEndsSessions(t *testing.T) {
	ts := mustOpenServer(t, nil)
	idle := ts.dial(t)
	raw := dialRaw(t, ts.Addr())
	raw.login()
	if code, _ := raw.cmd("MKD in"); code != 257 {
		t.Fatalf("MKD failed")
	}
	data := raw.startStor("in/x.csv")
	if _, err := data.Write(make([]byte, 10_000)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := idle.NoOp(); err == nil {
		t.Error("session still alive after Close")
	}
	if names := filesIn(t, ts.jail()+"/in"); len(names) != 0 {
		t.Errorf("files left after Close: %v", names)
	}
	if n := len(ts.rec.list()); n != 0 {
		t.Errorf("OnUpload called %d times for an interrupted upload", n)
	}
	if o, c := ts.ev.get("opened"), ts.ev.get("closed"); o != 2 || c != 2 {
		t.Errorf("opened/closed events = %d/%d, want 2/2", o, c)
	}
	if _, err := ftp.Dial(ts.Addr(), ftp.DialWithTimeout(time.Second)); err == nil {
		t.Error("server still accepts connections after Close")
	}
}
