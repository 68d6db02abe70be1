package ftpd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/spf13/afero"
	"golang.org/x/crypto/bcrypt"
)

const (
	testUser = "syniverse"
	testPass = "correct horse"
)

var testHash = sync.OnceValue(func() string {
	h, err := bcrypt.GenerateFromPassword([]byte(testPass), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
})

// recorder is an OnUpload callback that remembers what it got.
type recorder struct {
	root    string   // Options.Root, where the queued files are read
	fs      afero.Fs // when set, the jail the queued files are read from instead
	mu      sync.Mutex
	uploads []Upload
	fail    error             // returned by OnUpload when set
	inPlace []bool            // per call: was the queued file's content the announced one?
	block   chan struct{}     // when set, OnUpload waits on it
	entered chan struct{}     // when set, OnUpload signals entry
	ctxs    []context.Context // contexts OnUpload was given
}

func (r *recorder) onUpload(ctx context.Context, u Upload) error {
	if r.entered != nil {
		r.entered <- struct{}{}
	}
	if r.block != nil {
		<-r.block
	}
	data, err := r.read(u)
	sum := sha256.Sum256(data)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.uploads = append(r.uploads, u)
	r.ctxs = append(r.ctxs, ctx)
	r.inPlace = append(r.inPlace, err == nil && int64(len(data)) == u.Size && hex.EncodeToString(sum[:]) == u.SHA256)
	return r.fail
}

// read returns the queued file of u.
func (r *recorder) read(u Upload) ([]byte, error) {
	r.mu.Lock()
	fsys := r.fs
	r.mu.Unlock()
	if fsys != nil {
		return afero.ReadFile(fsys, u.Stored)
	}
	return os.ReadFile(r.path(u))
}

// path is where the queued file of u is on disk.
func (r *recorder) path(u Upload) string {
	return filepath.Join(r.root, u.User, filepath.FromSlash(u.Stored))
}

func (r *recorder) list() []Upload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Upload(nil), r.uploads...)
}

func (r *recorder) wasInPlace(i int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inPlace[i]
}

func (r *recorder) setFail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = err
}

// eventCounter implements Events.
type eventCounter struct {
	mu sync.Mutex
	m  map[string]int
}

func (e *eventCounter) add(k string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]int{}
	}
	e.m[k]++
}

func (e *eventCounter) FTPLogin(result string)       { e.add("login:" + result) }
func (e *eventCounter) FTPConnectionOpened()         { e.add("opened") }
func (e *eventCounter) FTPConnectionClosed()         { e.add("closed") }
func (e *eventCounter) UploadFinished(result string) { e.add("upload:" + result) }

func (e *eventCounter) get(k string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.m[k]
}

type testServer struct {
	*Server
	root string // Options.Root
	rec  *recorder
	ev   *eventCounter
}

// mustOpenServer starts a server on 127.0.0.1:0 with one user and closes it
// at the end of the test.
func mustOpenServer(tb testing.TB, mutate func(*Options)) *testServer {
	tb.Helper()
	root := filepath.Join(tb.TempDir(), "ftp")
	ts := &testServer{root: root, rec: &recorder{root: root}, ev: &eventCounter{}}
	logs := &testOutput{w: tb.Output()}
	tb.Cleanup(logs.stop) // registered first, so it runs after the server's Close
	opts := Options{
		Listen:           "127.0.0.1:0",
		Root:             ts.root,
		Users:            []User{{Name: testUser, PasswordHash: testHash()}},
		FailedLoginDelay: time.Millisecond,
		OnUpload:         ts.rec.onUpload,
		Events:           ts.ev,
		Logger:           slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mutate != nil {
		mutate(&opts)
	}
	s, err := New(opts)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	if err := s.Open(); err != nil {
		tb.Fatalf("Open: %v", err)
	}
	ts.Server = s
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return ts
}

// jail is the test user's directory on disk.
func (ts *testServer) jail() string { return filepath.Join(ts.root, testUser) }

// dial connects and logs in with jlaffaye/ftp.
func (ts *testServer) dial(tb testing.TB, opts ...ftp.DialOption) *ftp.ServerConn {
	tb.Helper()
	c, err := ts.dialAs(testUser, testPass, opts...)
	if err != nil {
		tb.Fatalf("dial and login: %v", err)
	}
	tb.Cleanup(func() { _ = c.Quit() })
	return c
}

func (ts *testServer) dialAs(user, pass string, opts ...ftp.DialOption) (*ftp.ServerConn, error) {
	opts = append([]ftp.DialOption{ftp.DialWithTimeout(5 * time.Second)}, opts...)
	c, err := ftp.Dial(ts.Addr(), opts...)
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, pass); err != nil {
		_ = c.Quit()
		return nil, err
	}
	return c, nil
}

// replyCode extracts the FTP reply code from a jlaffaye/ftp error.
func replyCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// filesIn lists the names in a directory on disk, including hidden ones
// but not the upload queue (see queued).
func filesIn(tb testing.TB, dir string) []string {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		tb.Fatalf("read dir: %v", err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() != queueDir {
			names = append(names, e.Name())
		}
	}
	return names
}

// queued returns the contents of the files waiting in the test user's
// upload queue, by name.
func (ts *testServer) queued(tb testing.TB) map[string][]byte {
	tb.Helper()
	dir := filepath.Join(ts.jail(), queueDir)
	out := map[string][]byte{}
	for _, n := range filesIn(tb, dir) {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			tb.Fatal(err)
		}
		out[n] = b
	}
	return out
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func randomBytes(tb testing.TB, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

// testCert makes a self-signed ECDSA certificate for 127.0.0.1 and returns
// the server certificate, a pool trusting it and its PEM files.
type testCert struct {
	cert              tls.Certificate
	pool              *x509.CertPool
	certFile, keyFile string
}

func newTestCert(tb testing.TB) testCert {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "campaignd test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	dir := tb.TempDir()
	tc := testCert{cert: cert, pool: pool,
		certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
	if err := os.WriteFile(tc.certFile, certPEM, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(tc.keyFile, keyPEM, 0o600); err != nil {
		tb.Fatal(err)
	}
	return tc
}

func (tc testCert) clientConfig() *tls.Config {
	return &tls.Config{
		RootCAs:            tc.pool,
		ServerName:         "127.0.0.1",
		ClientSessionCache: tls.NewLRUClientSessionCache(4),
		MinVersion:         tls.VersionTLS12,
	}
}

// rawClient speaks FTP by hand, for what jlaffaye/ftp cannot do: keep a
// data connection open, reset it, send ABOR, PORT, SITE.
type rawClient struct {
	tb   testing.TB
	conn net.Conn
	tp   *textproto.Conn
}

func dialRaw(tb testing.TB, addr string) *rawClient {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	c := &rawClient{tb: tb, conn: conn, tp: textproto.NewConn(conn)}
	tb.Cleanup(func() { _ = c.tp.Close() })
	if code, msg := c.read(); code != 220 {
		tb.Fatalf("greeting: %d %s", code, msg)
	}
	return c
}

// send writes a command without reading the reply.
func (c *rawClient) send(format string, args ...any) {
	c.tb.Helper()
	if err := c.tp.PrintfLine(format, args...); err != nil {
		c.tb.Fatalf("send %q: %v", format, err)
	}
}

// read returns the next reply; code 0 means the connection failed.
func (c *rawClient) read() (int, string) {
	c.tb.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	code, msg, err := c.tp.ReadResponse(0)
	if err != nil && code == 0 {
		return 0, err.Error()
	}
	return code, msg
}

func (c *rawClient) cmd(format string, args ...any) (int, string) {
	c.tb.Helper()
	c.send(format, args...)
	return c.read()
}

func (c *rawClient) login() {
	c.tb.Helper()
	if code, msg := c.cmd("USER %s", testUser); code != 331 {
		c.tb.Fatalf("USER: %d %s", code, msg)
	}
	if code, msg := c.cmd("PASS %s", testPass); code != 230 {
		c.tb.Fatalf("PASS: %d %s", code, msg)
	}
}

// epsv asks for a passive port and returns the address to dial.
func (c *rawClient) epsv() string {
	c.tb.Helper()
	code, msg := c.cmd("EPSV")
	if code != 229 {
		c.tb.Fatalf("EPSV: %d %s", code, msg)
	}
	i, j := strings.Index(msg, "(|||"), strings.LastIndex(msg, "|)")
	port, err := strconv.Atoi(msg[i+4 : j])
	if err != nil {
		c.tb.Fatalf("EPSV reply %q: %v", msg, err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// startStor opens a passive data connection and starts STOR name; it
// returns once the server has sent 150, i.e. the transfer is running.
func (c *rawClient) startStor(name string) *net.TCPConn {
	c.tb.Helper()
	addr := c.epsv()
	c.send("STOR %s", name)
	data, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		c.tb.Fatalf("data dial: %v", err)
	}
	c.tb.Cleanup(func() { _ = data.Close() })
	if code, msg := c.read(); code != 150 {
		c.tb.Fatalf("STOR: %d %s", code, msg)
	}
	return data.(*net.TCPConn)
}

// testOutput passes log lines to the test's output until the test ends,
// and drops them after: ftpserverlib's client goroutines may still log a
// disconnect once Close has returned, which must not touch a finished test.
type testOutput struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func (o *testOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return len(p), nil
	}
	return o.w.Write(p)
}

func (o *testOutput) stop() {
	o.mu.Lock()
	o.done = true
	o.mu.Unlock()
}
