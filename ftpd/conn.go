package ftpd

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// idleListener wraps ftpserverlib's passive data listener so that every data
// connection is cut after idle without a byte read or written (idle 0: never),
// and so that an upload can tell whether its data connection was closed
// under it (idleConn.closed). The cut makes
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
	idle     time.Duration // 0: no deadline
	deadline atomic.Int64  // unix nanoseconds of the deadline last set
	closed   atomic.Bool   // Close was called: by ABOR, the session's end, or after the transfer
}

// Close records that the server closed the connection, then closes it. An
// upload that finds its data connection closed before it is itself closed
// was aborted (ABOR, or the control connection ended): see upload.Close.
func (c *idleConn) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}

func (c *idleConn) extend(now time.Time) {
	if c.idle <= 0 {
		return
	}
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
	mu       sync.Mutex
	deadline time.Time // the last deadline the library set, restored after the handshake
}

func (c *handshakeConn) handshake() error {
	c.once.Do(func() {
		_ = c.Conn.SetDeadline(time.Now().Add(c.timeout))
		c.err = c.Conn.(*tls.Conn).Handshake()
		// Restore the library's deadline (its idle timeout for the first
		// command) rather than clearing it: a cleared deadline let a client
		// hold the connection for ever without sending a full command.
		c.mu.Lock()
		_ = c.Conn.SetDeadline(c.deadline)
		c.mu.Unlock()
	})
	return c.err
}

// SetDeadline remembers the deadline for after the handshake and sets it.
func (c *handshakeConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return c.Conn.SetDeadline(t)
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
//
// Sessions also find their control connection here, by remote address, to
// watch it (see ctrlConn in ctrl.go).
type trackListener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	byAddr map[string]*trackedConn
	closed bool
}

func newTrackListener(l net.Listener) *trackListener {
	return &trackListener{Listener: l, conns: make(map[*trackedConn]struct{}), byAddr: make(map[string]*trackedConn)}
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
	l.byAddr[c.RemoteAddr().String()] = tc
	return tc, nil
}

// lookup returns the live control connection from addr, or nil.
func (l *trackListener) lookup(addr string) *trackedConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byAddr[addr]
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
	l    *trackListener
	ctrl ctrlState
	// localError: the upload being closed failed here (the disk, the
	// store), not because of what the client sent, so its reply is 451
	// ("local error in processing": try again) rather than ftpserverlib's
	// 550, which clients take for a permanent refusal.
	localError atomic.Bool
}

// Write rewrites the 550 of an upload that failed here into 451 (see
// localError); ftpserverlib writes each reply line in one Write.
func (c *trackedConn) Write(p []byte) (int, error) {
	if c.localError.Load() {
		if len(p) < 4 || string(p[:3]) != "550" || (p[3] != ' ' && p[3] != '-') {
			c.localError.Store(false) // another reply: not the upload's
		} else {
			if p[3] == ' ' {
				c.localError.Store(false) // the reply's last line
			}
			q := append([]byte("451"), p[3:]...)
			if n, err := c.Conn.Write(q); err != nil {
				return min(n, len(p)), err
			}
			return len(p), nil
		}
	}
	return c.Conn.Write(p)
}

// Close closes the connection and forgets it.
func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	if c.l.byAddr[c.RemoteAddr().String()] == c {
		delete(c.l.byAddr, c.RemoteAddr().String())
	}
	c.l.mu.Unlock()
	c.ctrl.gone.Store(true)
	return c.Conn.Close()
}
