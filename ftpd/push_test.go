package ftpd_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"

	"campaignd/ftpd"
	"campaignd/internal/testenv"
)

const (
	pushUser = "payback"
	pushPass = "s3cr:t/@%" // needs percent-encoding in the URL
)

// pushCert is a self-signed certificate for 127.0.0.1 and a pool that
// trusts it.
type pushCert struct {
	cert            tls.Certificate
	pool            *x509.CertPool
	certPEM, keyPEM []byte
}

func newPushCert(tb testing.TB) pushCert {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	pc := pushCert{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		pool:    x509.NewCertPool(),
	}
	if pc.cert, err = tls.X509KeyPair(pc.certPEM, pc.keyPEM); err != nil {
		tb.Fatal(err)
	}
	pc.pool.AppendCertsFromPEM(pc.certPEM)
	return pc
}

// pushServer is a minimal ftpserverlib server over afero, with hooks to
// inject faults into its file system.
type pushServer struct {
	dir    string // served root; the pushes go to dir/inbox
	mode   string
	listen string
	cert   pushCert
	wrapFs func(afero.Fs) afero.Fs
	logins atomic.Int32
	srv    *ftpserver.FtpServer
	addr   string
	done   chan struct{}
}

func (s *pushServer) GetSettings() (*ftpserver.Settings, error) {
	st := &ftpserver.Settings{ListenAddr: s.listen, DefaultTransferType: ftpserver.TransferTypeBinary, IdleTimeout: 30}
	if s.mode == ftpd.TLSImplicit {
		st.TLSRequired = ftpserver.ImplicitEncryption
	}
	return st, nil
}

func (s *pushServer) ClientConnected(ftpserver.ClientContext) (string, error) {
	return "push test server", nil
}

func (s *pushServer) ClientDisconnected(ftpserver.ClientContext) {}

func (s *pushServer) AuthUser(_ ftpserver.ClientContext, user, pass string) (ftpserver.ClientDriver, error) {
	if user != pushUser || pass != pushPass {
		return nil, errors.New("bad credentials")
	}
	s.logins.Add(1)
	var fs afero.Fs = afero.NewBasePathFs(afero.NewOsFs(), s.dir)
	if s.wrapFs != nil {
		fs = s.wrapFs(fs)
	}
	return fs, nil
}

func (s *pushServer) GetTLSConfig() (*tls.Config, error) {
	if s.mode == ftpd.TLSOff {
		return nil, errors.New("no TLS")
	}
	return &tls.Config{Certificates: []tls.Certificate{s.cert.cert}, MinVersion: tls.VersionTLS12}, nil
}

// startPushServer starts a server on listen ("127.0.0.1:0" for any port).
func startPushServer(tb testing.TB, mode, listen string, wrap func(afero.Fs) afero.Fs) *pushServer {
	tb.Helper()
	s := &pushServer{dir: tb.TempDir(), mode: mode, listen: listen, cert: newPushCert(tb), wrapFs: wrap, done: make(chan struct{})}
	if err := os.Mkdir(filepath.Join(s.dir, "inbox"), 0o755); err != nil {
		tb.Fatal(err)
	}
	s.srv = ftpserver.NewFtpServer(s)
	if err := s.srv.Listen(); err != nil {
		tb.Fatal(err)
	}
	s.addr = s.srv.Addr()
	go func() { defer close(s.done); s.srv.Serve() }()
	tb.Cleanup(s.stop)
	return s
}

func (s *pushServer) stop() {
	select {
	case <-s.done:
	default:
		s.srv.Stop()
		<-s.done
	}
}

func (s *pushServer) url() string {
	u := url.URL{Scheme: "ftp", User: url.UserPassword(pushUser, pushPass), Host: s.addr, Path: "/inbox"}
	return u.String()
}

// files lists the names in dir/inbox.
func (s *pushServer) files(tb testing.TB) []string {
	tb.Helper()
	entries, err := os.ReadDir(filepath.Join(s.dir, "inbox"))
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func newTestPusher(tb testing.TB, rawURL, mode string, cert pushCert, timeout time.Duration) *ftpd.Pusher {
	tb.Helper()
	p, err := ftpd.NewPusher(ftpd.PushOptions{URL: rawURL, TLS: mode, Timeout: timeout, TLSConfig: &tls.Config{RootCAs: cert.pool}})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func pushPayload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = "0123456789,\n"[i%12]
	}
	return b
}

func TestPushRoundTrip(t *testing.T) {
	for _, mode := range []string{ftpd.TLSOff, ftpd.TLSExplicit, ftpd.TLSImplicit} {
		t.Run(mode, func(t *testing.T) {
			s := startPushServer(t, mode, "127.0.0.1:0", nil)
			p := newTestPusher(t, s.url(), mode, s.cert, 5*time.Second)
			for i, data := range [][]byte{pushPayload(3 << 20), []byte("Sender,Recipient\n"), {}} {
				if err := p.Push(context.Background(), "report_20261121.csv", bytes.NewReader(data), int64(len(data))); err != nil {
					t.Fatalf("push %d: %v", i, err)
				}
				got, err := os.ReadFile(filepath.Join(s.dir, "inbox", "report_20261121.csv"))
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("push %d: remote has %d bytes (%v), want %d", i, len(got), err, len(data))
				}
				if files := s.files(t); len(files) != 1 {
					t.Fatalf("remote files %v", files)
				}
			}
		})
	}
}

func TestPushErrors(t *testing.T) {
	s := startPushServer(t, ftpd.TLSExplicit, "127.0.0.1:0", nil)
	for _, tc := range []struct {
		name, url, mode string
		cfg             *tls.Config
		want            string
	}{
		{"bad password", "ftp://payback:nope@" + s.addr + "/inbox", ftpd.TLSOff, nil, "login"},
		{"no such directory", strings.Replace(s.url(), "/inbox", "/outbox", 1), ftpd.TLSOff, nil, "directory"},
		{"untrusted certificate", s.url(), ftpd.TLSExplicit, &tls.Config{}, "certificate"},
		{"nothing listening", "ftp://u:p@" + testenv.FreeAddr(t) + "/", ftpd.TLSOff, nil, "connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ftpd.NewPusher(ftpd.PushOptions{URL: tc.url, TLS: tc.mode, Timeout: 5 * time.Second, TLSConfig: tc.cfg})
			if err != nil {
				t.Fatal(err)
			}
			err = p.Push(context.Background(), "r.csv", strings.NewReader("x\n"), 2)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), pushPass) {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
	for _, bad := range []ftpd.PushOptions{{URL: "http://h/"}, {URL: "ftp:///x"}, {URL: "ftp://h/", TLS: "maybe"}, {URL: "ftp://h/?a=b"}} {
		if _, err := ftpd.NewPusher(bad); err == nil {
			t.Errorf("NewPusher(%+v) accepted", bad)
		}
	}
	if p, _ := ftpd.NewPusher(ftpd.PushOptions{URL: s.url()}); strings.Contains(p.String(), "s3cr") {
		t.Fatalf("String() shows the password: %s", p)
	}
}

// cutFs fails every write after limit bytes of a file, which makes the
// server drop the data connection in the middle of the upload.
type cutFs struct {
	afero.Fs
	limit int64
	block chan struct{} // if set, writes past the limit block until closed instead
}

func (f cutFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	file, err := f.Fs.OpenFile(name, flag, perm)
	if err != nil || flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return file, err
	}
	return &cutFile{File: file, left: f.limit, block: f.block}, nil
}

type cutFile struct {
	afero.File
	left  int64
	block chan struct{}
}

func (f *cutFile) Write(b []byte) (int, error) {
	if int64(len(b)) > f.left {
		if f.block != nil {
			<-f.block
		}
		return 0, errors.New("disk on fire")
	}
	f.left -= int64(len(b))
	return f.File.Write(b)
}

func TestPushCutMidTransferLeavesNoFile(t *testing.T) {
	for _, mode := range []string{ftpd.TLSOff, ftpd.TLSExplicit} {
		t.Run(mode, func(t *testing.T) {
			s := startPushServer(t, mode, "127.0.0.1:0", func(fs afero.Fs) afero.Fs { return cutFs{Fs: fs, limit: 256 << 10} })
			p := newTestPusher(t, s.url(), mode, s.cert, 5*time.Second)
			data := pushPayload(8 << 20)
			err := p.Push(context.Background(), "report_20261121.csv", bytes.NewReader(data), int64(len(data)))
			if err == nil {
				t.Fatal("push succeeded")
			}
			if files := s.files(t); len(files) != 0 {
				t.Fatalf("remote files after a cut upload: %v", files)
			}
		})
	}
}

// failingReader returns an error after n bytes, like a disk read error:
// jlaffaye/ftp then closes the data connection gracefully and the server
// sees a complete (truncated) file.
type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(b []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("read error")
	}
	if len(b) > f.n {
		b = b[:f.n]
	}
	n, err := f.r.Read(b)
	f.n -= n
	return n, err
}

func TestPushReaderErrorIsNeverRenamed(t *testing.T) {
	s := startPushServer(t, ftpd.TLSOff, "127.0.0.1:0", nil)
	p := newTestPusher(t, s.url(), ftpd.TLSOff, s.cert, 5*time.Second)
	data := pushPayload(1 << 20)
	err := p.Push(context.Background(), "r.csv", &failingReader{r: bytes.NewReader(data), n: 100 << 10}, int64(len(data)))
	if err == nil || !strings.Contains(err.Error(), "read error") {
		t.Fatalf("err = %v", err)
	}
	if files := s.files(t); len(files) != 0 {
		t.Fatalf("remote files: %v", files)
	}
	// A short reader (fewer bytes than announced) is caught too.
	err = p.Push(context.Background(), "r.csv", bytes.NewReader(data[:10]), int64(len(data)))
	if err == nil || len(s.files(t)) != 0 {
		t.Fatalf("short reader: err = %v, files %v", err, s.files(t))
	}
}

// noOverwriteFs refuses to rename onto an existing file, as some servers do.
type noOverwriteFs struct{ afero.Fs }

func (f noOverwriteFs) Rename(from, to string) error {
	if _, err := f.Fs.Stat(to); err == nil {
		return os.ErrExist
	}
	return f.Fs.Rename(from, to)
}

func TestPushReplacesExistingFileWhenServerRefusesRename(t *testing.T) {
	s := startPushServer(t, ftpd.TLSOff, "127.0.0.1:0", func(fs afero.Fs) afero.Fs { return noOverwriteFs{fs} })
	p := newTestPusher(t, s.url(), ftpd.TLSOff, s.cert, 5*time.Second)
	for _, data := range []string{"first\n", "second\n"} {
		if err := p.Push(context.Background(), "r.csv", strings.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(s.dir, "inbox", "r.csv")); string(got) != "second\n" {
		t.Fatalf("remote has %q", got)
	}
}

// silentServer accepts connections and never answers.
func silentServer(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// pushWithin runs push and fails the test if it has not returned within
// limit (a hang, not a timing assertion: limit is many times the timeout).
func pushWithin(t *testing.T, limit time.Duration, push func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- push() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("push still running after %v", limit)
		return nil
	}
}

func TestPushDeadlines(t *testing.T) {
	t.Run("server never answers", func(t *testing.T) {
		addr := silentServer(t)
		for _, mode := range []string{ftpd.TLSOff, ftpd.TLSImplicit} {
			p := newTestPusher(t, "ftp://u:p@"+addr+"/", mode, pushCert{}, 300*time.Millisecond)
			err := pushWithin(t, 10*time.Second, func() error {
				return p.Push(context.Background(), "r.csv", strings.NewReader("x\n"), 2)
			})
			if err == nil || !strings.Contains(err.Error(), "timeout") {
				t.Fatalf("%s: err = %v, want a timeout", mode, err)
			}
		}
	})
	t.Run("server stalls mid-transfer", func(t *testing.T) {
		block := make(chan struct{})
		s := startPushServer(t, ftpd.TLSOff, "127.0.0.1:0", func(fs afero.Fs) afero.Fs { return cutFs{Fs: fs, limit: 64 << 10, block: block} })
		t.Cleanup(func() { close(block) }) // runs before the server stops
		p := newTestPusher(t, s.url(), ftpd.TLSOff, s.cert, 300*time.Millisecond)
		data := pushPayload(32 << 20)
		err := pushWithin(t, 20*time.Second, func() error {
			return p.Push(context.Background(), "r.csv", bytes.NewReader(data), int64(len(data)))
		})
		if err == nil {
			t.Fatal("push succeeded")
		}
	})
	t.Run("watchdog", func(t *testing.T) {
		addr := silentServer(t)
		p := newTestPusher(t, "ftp://u:p@"+addr+"/", ftpd.TLSOff, pushCert{}, time.Hour)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		err := pushWithin(t, 10*time.Second, func() error { return p.Push(ctx, "r.csv", strings.NewReader("x\n"), 2) })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
	})
}
