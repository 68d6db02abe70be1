package ftpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/jlaffaye/ftp"
)

// Push defaults.
const (
	DefaultPushTimeout     = 30 * time.Second
	DefaultPushMaxDuration = 30 * time.Minute
)

// PushOptions configure a Pusher.
type PushOptions struct {
	// URL is report.ftp_url: ftp://user:password@host:port/dir. The user
	// and password are percent-decoded; no user means anonymous. The port
	// defaults to 21 (990 with implicit TLS). The path is the remote
	// directory, relative to the login directory as in RFC 1738 (%2F for
	// an absolute one); empty means the login directory.
	URL string
	// TLS is "off" (default), "explicit" (AUTH TLS, data protected too) or
	// "implicit" (TLS from the first byte).
	TLS string
	// Timeout bounds every network operation: connect, each read and each
	// write on the control and data connections, TLS handshakes. Default 30s.
	Timeout time.Duration
	// MaxDuration bounds a whole push (watchdog). Default 30m.
	MaxDuration time.Duration
	// TLSConfig is the base TLS configuration (tests set RootCAs). ServerName
	// defaults to the URL's host and a session cache is added, so that data
	// connections resume the control connection's session, as servers such
	// as vsftpd (require_ssl_reuse) demand.
	TLSConfig *tls.Config
	Logger    *slog.Logger
}

// Pusher uploads files to a remote FTP server with github.com/jlaffaye/ftp,
// atomically from the reader's point of view: the file is stored as
// NAME.part, its size checked, then renamed to NAME. It is safe for
// concurrent use; each Push uses its own connection.
type Pusher struct {
	addr, host  string
	user, pass  string
	dir         string
	mode        string
	timeout     time.Duration
	maxDuration time.Duration
	tlsConfig   *tls.Config // nil when mode is off
	log         *slog.Logger
	redacted    string
}

// NewPusher checks o and fills defaults. It does not connect.
func NewPusher(o PushOptions) (*Pusher, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("ftpd: push url: %w", err)
	}
	if u.Scheme != "ftp" || u.Host == "" {
		return nil, fmt.Errorf("ftpd: push url %q: want ftp://user:password@host:port/dir", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("ftpd: push url %q: no query or fragment allowed", u.Redacted())
	}
	p := &Pusher{mode: o.TLS, timeout: o.Timeout, maxDuration: o.MaxDuration, log: o.Logger, redacted: u.Redacted()}
	switch p.mode {
	case "":
		p.mode = TLSOff
	case TLSOff, TLSExplicit, TLSImplicit:
	default:
		return nil, fmt.Errorf("ftpd: push tls %q: want off, explicit or implicit", o.TLS)
	}
	if p.timeout <= 0 {
		p.timeout = DefaultPushTimeout
	}
	if p.maxDuration <= 0 {
		p.maxDuration = DefaultPushMaxDuration
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = p.log.With("system", "ftp_push")
	p.host = u.Hostname()
	port := u.Port()
	if port == "" {
		port = "21"
		if p.mode == TLSImplicit {
			port = "990"
		}
	}
	p.addr = net.JoinHostPort(p.host, port)
	p.user, p.pass = "anonymous", "anonymous@"
	if u.User != nil {
		p.user = u.User.Username()
		p.pass, _ = u.User.Password()
	}
	// RFC 1738: the path is relative to the login directory; a leading
	// %2F makes it absolute.
	p.dir = strings.TrimPrefix(u.Path, "/")
	if strings.ContainsAny(p.dir, "\r\n") || strings.ContainsAny(p.user+p.pass, "\r\n") {
		return nil, errors.New("ftpd: push url: line breaks are not allowed")
	}
	if p.mode != TLSOff {
		cfg := &tls.Config{}
		if o.TLSConfig != nil {
			cfg = o.TLSConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = p.host
		}
		if cfg.ClientSessionCache == nil {
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(16)
		}
		if cfg.MinVersion == 0 {
			cfg.MinVersion = tls.VersionTLS12
		}
		p.tlsConfig = cfg
	}
	return p, nil
}

// String returns the target URL without its password, for logs.
func (p *Pusher) String() string { return p.redacted }

// Push uploads size bytes read from r as name in the remote directory:
// STOR name.part, check its size, RNFR/RNTO to name. If the server refuses
// to rename over an existing name, that file is deleted and the rename
// tried once more. On failure the .part file is deleted (best effort) and
// the error returned; nothing is ever left under name unless the whole
// file arrived. Every operation has a deadline, and the whole push is
// bounded by MaxDuration and ctx.
func (p *Pusher) Push(ctx context.Context, name string, r io.Reader, size int64) (err error) {
	if name == "" || strings.ContainsAny(name, "/\\\r\n") {
		return fmt.Errorf("push: bad file name %q", name)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, p.maxDuration)
	defer cancel()
	conns := &pushConns{}
	stop := context.AfterFunc(ctx, conns.closeAll) // the watchdog
	defer func() {
		stop()
		conns.closeAll()
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		}
	}()

	opts := []ftp.DialOption{ftp.DialWithDialFunc(p.dialFunc(ctx, conns)), ftp.DialWithShutTimeout(p.timeout)}
	switch p.mode {
	case TLSExplicit:
		opts = append(opts, ftp.DialWithExplicitTLS(p.tlsConfig))
	case TLSImplicit:
		// The dial func wraps every connection; the option makes Login
		// send PBSZ 0 and PROT P.
		opts = append(opts, ftp.DialWithTLS(p.tlsConfig))
	}
	c, err := ftp.Dial(p.addr, opts...)
	if err != nil {
		return fmt.Errorf("push: connect to %s: %w", p.addr, err)
	}
	defer c.Quit()
	if err := c.Login(p.user, p.pass); err != nil {
		return fmt.Errorf("push: login as %s: %w", p.user, err)
	}
	if p.dir != "" {
		if err := c.ChangeDir(p.dir); err != nil {
			return fmt.Errorf("push: change to directory %q: %w", p.dir, err)
		}
	}
	part := name + ".part"
	if err := p.upload(c, part, name, r, size); err != nil {
		if derr := c.Delete(part); derr != nil && !isFTPReply(derr) {
			p.log.Debug("push: could not delete partial file", "file", path.Join(p.dir, part), "error", derr)
		}
		return err
	}
	p.log.Info("push: uploaded", "url", p.redacted, "file", path.Join(p.dir, name), "bytes", size, "duration", time.Since(start))
	return nil
}

func (p *Pusher) upload(c *ftp.ServerConn, part, name string, r io.Reader, size int64) error {
	cr := &pushCounter{r: r}
	if err := c.Stor(part, cr); err != nil {
		// A local read error still ends the transfer gracefully, and the
		// server may have answered 226 for a truncated file: it is never
		// renamed.
		return fmt.Errorf("push: store %s: %w", part, err)
	}
	if size >= 0 && cr.n != size {
		return fmt.Errorf("push: store %s: read %d bytes, want %d", part, cr.n, size)
	}
	switch got, err := c.FileSize(part); {
	case err == nil && got != size && size >= 0:
		return fmt.Errorf("push: server has %d bytes of %s, want %d", got, part, size)
	case err != nil && !isFTPReply(err):
		return fmt.Errorf("push: size of %s: %w", part, err)
	}
	// SIZE not supported (a 5xx reply): nothing more to check.
	err := c.Rename(part, name)
	if err != nil && isFTPReply(err) {
		// Some servers refuse to rename over an existing file; the day's
		// report is being pushed again, so the old copy goes.
		if derr := c.Delete(name); derr == nil {
			err = c.Rename(part, name)
		}
	}
	if err != nil {
		return fmt.Errorf("push: rename %s to %s: %w", part, name, err)
	}
	return nil
}

// isFTPReply reports whether err is a reply from the server (as opposed to
// a network failure), after which the control connection is still usable.
func isFTPReply(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te)
}

// dialFunc returns the dial function given to jlaffaye/ftp: it connects
// with the context and timeout, tracks the connection for the watchdog,
// puts a deadline on every read and write, and does the TLS the library
// skips when it has a dial func: implicit TLS on every connection,
// explicit TLS on data connections (the first connection, the control one,
// stays plain; the library upgrades it after AUTH TLS). The control and
// data connections share one tls.Config, and so one session cache.
func (p *Pusher) dialFunc(ctx context.Context, conns *pushConns) func(network, address string) (net.Conn, error) {
	var mu sync.Mutex
	first := true
	return func(network, address string) (net.Conn, error) {
		mu.Lock()
		control := first
		first = false
		mu.Unlock()
		d := net.Dialer{Timeout: p.timeout, KeepAlive: 15 * time.Second}
		raw, err := d.DialContext(ctx, network, address)
		if err != nil {
			return nil, err
		}
		if !conns.add(raw) {
			raw.Close()
			return nil, context.Cause(ctx)
		}
		var c net.Conn = &pushConn{Conn: raw, timeout: p.timeout, data: !control}
		if p.mode == TLSImplicit || p.mode == TLSExplicit && !control {
			c = tls.Client(c, p.tlsConfig)
		}
		return c, nil
	}
}

// pushConn sets a deadline before every read and write, which
// jlaffaye/ftp does not do after dialing.
type pushConn struct {
	net.Conn
	timeout time.Duration
	data    bool
}

// Close ends a data connection gracefully: half-close, then read until the
// server closes. Closing a socket with unread input (a TLS 1.3 server's
// session tickets, which an uploading client never reads) sends a reset,
// and the server (vsftpd: "426 Failure reading network stream") may lose
// the end of the upload.
func (c *pushConn) Close() error {
	if tc, ok := c.Conn.(*net.TCPConn); ok && c.data {
		if tc.CloseWrite() == nil && tc.SetReadDeadline(time.Now().Add(c.timeout)) == nil {
			io.Copy(io.Discard, tc)
		}
	}
	return c.Conn.Close()
}

func (c *pushConn) Read(b []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *pushConn) Write(b []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// pushConns are the connections of one push, closed together by the
// watchdog or at the end.
type pushConns struct {
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func (s *pushConns) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns = append(s.conns, c)
	return true
}

func (s *pushConns) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

type pushCounter struct {
	r io.Reader
	n int64
}

func (c *pushCounter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}
