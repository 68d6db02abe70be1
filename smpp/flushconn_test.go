package smpp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"campaignd/internal/testenv"
)

// slowConn is a net.Conn whose writes take a while and are counted.
type slowConn struct {
	net.Conn // nil: only Write, Close and deadlines are used
	mu       sync.Mutex
	buf      bytes.Buffer
	writes   int
	delay    time.Duration
	fail     error
	closed   bool
}

func (c *slowConn) Write(p []byte) (int, error) {
	time.Sleep(c.delay)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return 0, c.fail
	}
	c.writes++
	return c.buf.Write(p)
}

func (c *slowConn) Close() error                     { c.mu.Lock(); c.closed = true; c.mu.Unlock(); return nil }
func (c *slowConn) SetWriteDeadline(time.Time) error { return nil }
func (c *slowConn) SetReadDeadline(time.Time) error  { return nil }

func (c *slowConn) snapshot() (string, int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String(), c.writes, c.closed
}

// TestFlushConnCoalescesAndNeverHolds: writes made while the socket is busy go out together, in
// order; a lone write goes out with nothing after it (an enquire_link or a response never waits in
// the buffer); Close sends what is buffered.
func TestFlushConnCoalescesAndNeverHolds(t *testing.T) {
	raw := &slowConn{delay: time.Millisecond}
	f := newFlushConn(raw, time.Second)
	var want bytes.Buffer
	for i := range 2000 {
		p := fmt.Sprintf("pdu-%04d;", i)
		want.WriteString(p)
		if n, err := f.Write([]byte(p)); err != nil || n != len(p) {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	testenv.Eventually(t, 10*time.Second, "every byte written", func() bool {
		s, _, _ := raw.snapshot()
		return len(s) == want.Len()
	})
	s, writes, _ := raw.snapshot()
	if s != want.String() {
		t.Fatal("bytes reordered or changed")
	}
	if writes >= 1000 {
		t.Fatalf("%d syscalls for 2000 writes made while each syscall takes 1 ms", writes)
	}
	t.Logf("2000 writes in %d syscalls", writes)

	// A lone write after a pause is sent by itself.
	f.Write([]byte("enquire_link_resp"))
	testenv.Eventually(t, 5*time.Second, "the lone write sent", func() bool {
		s, _, _ := raw.snapshot()
		return len(s) == want.Len()+len("enquire_link_resp")
	})
	// Close sends what is still buffered, then closes.
	raw.delay = 0
	f.Write([]byte("unbind"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	s, _, closed := raw.snapshot()
	if !closed || !bytes.HasSuffix([]byte(s), []byte("enquire_link_respunbind")) {
		t.Fatalf("after Close: closed %v, tail %q", closed, s[max(0, len(s)-30):])
	}
	if _, err := f.Write([]byte("late")); err == nil {
		t.Fatal("write after Close succeeded")
	}
}

// TestFlushConnWriteErrorClosesAndFailsLaterWrites: a failed socket write closes the connection (so
// the reader fails and the session ends) and every later Write returns the error.
func TestFlushConnWriteErrorClosesAndFailsLaterWrites(t *testing.T) {
	boom := errors.New("connection reset")
	raw := &slowConn{fail: boom}
	f := newFlushConn(raw, time.Second)
	f.Write([]byte("submit_sm"))
	testenv.Eventually(t, 5*time.Second, "the failure seen", func() bool {
		_, err := f.Write([]byte("x"))
		_, _, closed := raw.snapshot()
		return errors.Is(err, boom) && closed
	})
	f.Close()
}
