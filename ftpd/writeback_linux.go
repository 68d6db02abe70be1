package ftpd

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing bytes [off, off+n) of f
// to disk now, without waiting, so that write-back runs while the upload is
// still arriving and the fsync before the 226 has little left to flush. It
// is only a hint: durability still comes from that fsync, so errors (a file
// system without support, say) are ignored.
func startWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	})
}
