package ftpd

import (
	"net"
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
