package ftpd

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// idleListener wraps ftpserverlib's passive data listener so that every data
// connection is cut after idle without a byte read or written. The cut makes
// the transfer's Read fail with a timeout, so the upload gets TransferError
// and its partial file is removed. TLS is layered on top by the library, so
// the handshake is covered too.
type idleListener struct {
	net.Listener
	idle time.Duration
}

// Accept returns the next connection with its idle deadline armed.
func (l *idleListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	ic := &idleConn{Conn: c, idle: l.idle}
	ic.extend(time.Now())
	return ic, nil
}

// idleConn pushes its deadline forward on every Read and Write. To keep
// the cost off the hot path the deadline is moved at most every idle/8, so a
// stalled connection is cut after between 7/8 of idle and idle.
type idleConn struct {
	net.Conn
	idle     time.Duration
	deadline atomic.Int64 // unix nanoseconds of the deadline last set
}

func (c *idleConn) extend(now time.Time) {
	d := now.Add(c.idle)
	if d.UnixNano()-c.deadline.Load() < int64(c.idle/8) {
		return
	}
	c.deadline.Store(d.UnixNano())
	_ = c.Conn.SetDeadline(d)
}

// Read extends the deadline and reads.
func (c *idleConn) Read(p []byte) (int, error) {
	c.extend(time.Now())
	return c.Conn.Read(p)
}

// Write extends the deadline and writes.
func (c *idleConn) Write(p []byte) (int, error) {
	c.extend(time.Now())
	return c.Conn.Write(p)
}

// implicitListener serves implicit TLS on the control port. Unlike
// tls.NewListener it bounds the handshake: ftpserverlib writes its greeting
// (which runs the handshake) before it sets any deadline, so a client that
// never sends a ClientHello would otherwise hold the connection forever.
type implicitListener struct {
	net.Listener
	cfg     *tls.Config
	timeout time.Duration
}

// Accept returns the next connection as a server-side TLS connection whose
// handshake must finish within the timeout.
func (l *implicitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &handshakeConn{Conn: tls.Server(c, l.cfg), timeout: l.timeout}, nil
}

// handshakeConn runs the TLS handshake, under a deadline, on first use.
type handshakeConn struct {
	net.Conn // *tls.Conn
	timeout  time.Duration
	once     sync.Once
	err      error
}

func (c *handshakeConn) handshake() error {
	c.once.Do(func() {
		_ = c.Conn.SetDeadline(time.Now().Add(c.timeout))
		c.err = c.Conn.(*tls.Conn).Handshake()
		_ = c.Conn.SetDeadline(time.Time{})
	})
	return c.err
}

// Read completes the handshake, then reads.
func (c *handshakeConn) Read(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// Write completes the handshake, then writes.
func (c *handshakeConn) Write(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// trackListener remembers the control connections it accepted so that Close
// can end them. ftpserverlib's Stop leaves live sessions running, and
// calling ClientContext.Close from another goroutine races with the
// session's own disconnect (an unsynchronised flag in v0.32.3, seen with
// -race); closing the socket under the session ends it cleanly instead: its
// next read fails, it aborts any transfer and calls ClientDisconnected.
type trackListener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

func newTrackListener(l net.Listener) *trackListener {
	return &trackListener{Listener: l, conns: make(map[*trackedConn]struct{})}
}

// Accept returns the next connection, tracked until it is closed.
func (l *trackListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = c.Close()
		return tc, nil
	}
	l.conns[tc] = struct{}{}
	return tc, nil
}

// closeConns closes every tracked connection, and any accepted later.
func (l *trackListener) closeConns() {
	l.mu.Lock()
	l.closed = true
	conns := make([]*trackedConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Conn.Close()
	}
}

type trackedConn struct {
	net.Conn
	l *trackListener
}

// Close closes the connection and forgets it.
func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}
