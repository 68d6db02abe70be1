package ftpd

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ctrlState is what campaignd watches on a control connection, below
// ftpserverlib (which reads it in its own goroutine, through a bufio.Reader
// and, after AUTH TLS or on the implicit port, a tls.Conn):
//
//   - read and handled count the bytes the library has read, and the bytes it
//     had read when it last set a deadline. The library sets the control
//     deadline (its idle timeout) just before reading each command, after
//     the previous one has been handled, so read > handled means a command
//     (or part of one) has been read and not yet handled: an ABOR may be on
//     its way. upload.Close waits for it (see settle).
//   - partial is set while the plain-text bytes read end in the middle of a
//     line. ftpserverlib's bufio.ReadLine hands a partial line that hit the
//     deadline to the command handler as if it were complete, and then sets
//     a fresh deadline: a client trickling a byte every few seconds never
//     timed out. The idle timeout must count from the last complete
//     command, so a deadline that expires in the middle of a command ends the
//     connection instead (see trackedConn.Read).
//   - gone is set once the connection has failed or closed.
type ctrlState struct {
	read, handled atomic.Int64
	gone          atomic.Bool

	mu      sync.Mutex // guards the fields below, touched only by the library's reader
	partial bool       // plain text read so far ends without a line end
	tls     bool       // the stream is TLS: partial is unknown, read > handled stands for it
}

// errIdleCommand ends a control connection whose command did not complete
// within the idle timeout.
var errIdleCommand = errors.New("ftpd: command not completed within the idle timeout")

// Read reads for the library and keeps ctrlState. A deadline that expires
// while a command is incomplete closes the connection (see ctrlState).
func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	st := &c.ctrl
	if n > 0 {
		st.mu.Lock()
		if !st.tls && !st.partial && (p[0] == 0x16 || p[0] == 0x80) {
			// A TLS handshake record (or SSLv2 hello) where a command
			// should start: AUTH TLS, or the implicit TLS port.
			st.tls = true
		}
		if !st.tls {
			st.partial = p[n-1] != '\n'
		}
		st.mu.Unlock()
		st.read.Add(int64(n))
	}
	if err == nil {
		return n, nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		st.mu.Lock()
		incomplete := st.partial || (st.tls && st.read.Load() > st.handled.Load())
		st.mu.Unlock()
		if incomplete {
			st.gone.Store(true)
			_ = c.Conn.Close()
			return n, errIdleCommand
		}
		return n, err
	}
	st.gone.Store(true)
	return n, err
}

// SetDeadline marks the bytes read so far as handled (the library sets the
// deadline before reading each command) and sets the deadline.
func (c *trackedConn) SetDeadline(t time.Time) error {
	c.ctrl.handled.Store(c.ctrl.read.Load())
	return c.Conn.SetDeadline(t)
}

// controlState is the result of peeking at a control connection.
type controlState int

const (
	controlQuiet   controlState = iota // nothing unread, connection open
	controlPending                     // bytes are waiting to be read
	controlGone                        // closed or failed
)

// peek reports, without consuming anything or blocking, whether the control
// connection has unread bytes or has been closed by the peer. It does not
// take the connection's read lock, so it works while the library is blocked
// reading it.
func (c *trackedConn) peek() controlState {
	if c.ctrl.gone.Load() {
		return controlGone
	}
	return peekConn(c.Conn)
}

// unhandled reports whether bytes the library read have not been handled yet.
func (c *trackedConn) unhandled() bool {
	return c.ctrl.read.Load() > c.ctrl.handled.Load()
}

// settleWait bounds how long an upload that ended cleanly waits for what
// the client sent on the control connection meanwhile to be handled.
const settleWait = 2 * time.Second

// settleGrace is how long an upload that ended cleanly waits, at least, for
// the control connection to close: a killed client's kernel closes both its
// sockets at once, but not always the control connection first (seen with
// curl), so its data connection's end can arrive a moment before its control
// connection's. Every STOR's 226 comes this much later.
const settleGrace = 25 * time.Millisecond

// settle decides, for a STOR whose data stream ended cleanly, whether the
// client meant it: it returns a reason when the transfer must count as
// aborted. A data connection closed by the library (ABOR, or the session
// ended) or a control connection closed by the client (killed mid-upload:
// nobody is left to receive the 226) is an abort. Bytes received on the
// control connection but not yet handled may be an ABOR sent before the
// data connection was closed: settle waits until the library has handled
// them (at most settleWait), so an ABOR that reached the server before the
// end of the data stream is always honoured, whichever goroutine runs first.
// It always watches the control connection for settleGrace.
func settle(ctrl *trackedConn, data *idleConn) string {
	start := time.Now()
	for {
		if data != nil && data.closed.Load() {
			return "transfer aborted (ABOR or end of session) before its end was confirmed"
		}
		if ctrl == nil {
			return ""
		}
		switch ctrl.peek() {
		case controlGone:
			return "control connection closed before the end of the transfer was confirmed"
		case controlQuiet:
			if !ctrl.unhandled() && time.Since(start) >= settleGrace {
				return ""
			}
		}
		if time.Since(start) > settleWait {
			return "" // e.g. a command pipelined during the transfer, waiting for it
		}
		time.Sleep(2 * time.Millisecond)
	}
}
