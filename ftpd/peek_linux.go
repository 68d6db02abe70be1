package ftpd

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peekConn looks at a TCP connection's receive queue with
// recv(MSG_PEEK|MSG_DONTWAIT) under RawConn.Control, which neither consumes
// bytes nor waits for a concurrent Read.
func peekConn(c net.Conn) controlState {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return controlQuiet
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return controlGone
	}
	state := controlQuiet
	var buf [1]byte
	cerr := rc.Control(func(fd uintptr) {
		n, _, err := unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case err == nil && n > 0:
			state = controlPending
		case err == nil && n == 0:
			state = controlGone // orderly shutdown by the peer
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			state = controlQuiet
		default:
			state = controlGone // reset, or closed here
		}
	})
	if cerr != nil {
		return controlGone
	}
	return state
}
