package smpp

import (
	"net"
	"sync"
	"time"
)

// maxPending bounds what flushConn holds before a Write waits for the socket.
const maxPending = 256 << 10

// flushConn coalesces writes: Write appends to a buffer and a flusher goroutine writes whatever has
// gathered in one syscall. gosmpp writes each PDU with its own Write from one writer goroutine, so a
// burst of submits (or of deliver_sm_resp) becomes one write; when the writer goes idle the flusher
// has already sent everything, so an enquire_link or a response never waits in the buffer.
//
// A failed write closes the connection (the reader then fails and the session ends) and every later
// Write returns the error. Write deadlines set by gosmpp are replaced by the flusher's own: each
// syscall must finish within timeout.
type flushConn struct {
	net.Conn
	timeout time.Duration

	mu      sync.Mutex
	space   *sync.Cond // signalled when buf was taken or the flusher stopped
	buf     []byte
	spare   []byte
	err     error
	kick    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

func newFlushConn(c net.Conn, timeout time.Duration) *flushConn {
	f := &flushConn{Conn: c, timeout: timeout, kick: make(chan struct{}, 1),
		stop: make(chan struct{}), stopped: make(chan struct{})}
	f.space = sync.NewCond(&f.mu)
	go f.loop()
	return f
}

// Write queues p for the flusher.
func (f *flushConn) Write(p []byte) (int, error) {
	f.mu.Lock()
	for f.err == nil && len(f.buf) >= maxPending {
		f.space.Wait()
	}
	if f.err != nil {
		err := f.err
		f.mu.Unlock()
		return 0, err
	}
	f.buf = append(f.buf, p...)
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default: // the flusher is already due to look
	}
	return len(p), nil
}

func (f *flushConn) loop() {
	defer close(f.stopped)
	for {
		select {
		case <-f.kick:
		case <-f.stop:
			f.flush() // what was written before Close still goes out
			f.fail(net.ErrClosed)
			return
		}
		if !f.flush() {
			return
		}
	}
}

// flush writes what has gathered; false when the connection failed.
func (f *flushConn) flush() bool {
	f.mu.Lock()
	b := f.buf
	f.buf, f.spare = f.spare[:0], nil
	failed := f.err != nil
	f.space.Broadcast()
	f.mu.Unlock()
	if failed || len(b) == 0 {
		f.mu.Lock()
		f.spare = b[:0]
		f.mu.Unlock()
		return !failed
	}
	if f.timeout > 0 {
		_ = f.Conn.SetWriteDeadline(time.Now().Add(f.timeout))
	}
	_, err := f.Conn.Write(b)
	if cap(b) > maxPending*2 {
		b = nil // do not keep a buffer grown by one huge burst
	}
	f.mu.Lock()
	f.spare = b[:0]
	f.mu.Unlock()
	if err != nil {
		f.fail(err)
		_ = f.Conn.Close()
		return false
	}
	return true
}

func (f *flushConn) fail(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.space.Broadcast()
	f.mu.Unlock()
}

// Close sends what is buffered (within the write timeout) and closes the connection.
func (f *flushConn) Close() error {
	f.once.Do(func() { close(f.stop) })
	<-f.stopped
	return f.Conn.Close()
}

// SetDeadline sets the read deadline only: writes have the flusher's.
func (f *flushConn) SetDeadline(t time.Time) error { return f.Conn.SetReadDeadline(t) }

// SetWriteDeadline is ignored: the flusher sets a deadline for each syscall.
func (f *flushConn) SetWriteDeadline(time.Time) error { return nil }
