package ftpd

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"

	"campaignd"
)

// upload is the handle ftpserverlib writes a STOR into. It writes a hidden
// temporary file next to the target, counting and hashing the bytes; its
// Close (which the library calls before sending the final reply) either
// discards the file or commits it and calls OnUpload. See the package doc.
//
// The library calls Write or ReadFrom, TransferError and Close from one
// goroutine, one after the other, so upload needs no locking (ReadFrom's
// helper goroutines have finished when it returns).
type upload struct {
	s     *session
	name  string // FTP path of the final file, "/in/x.csv"
	tmp   string // name in the jail of the temporary file
	f     afero.File
	h     hash.Hash
	size  int64
	max   int64 // < 0: no cap
	allo  int64 // size announced by ALLO; < 0: none
	start time.Time
	data  *idleConn // the data connection, found in ReadFrom; nil if unknown

	flushed int64 // bytes already handed to startWriteback

	transferErr error // set by TransferError: the transfer did not complete
	tooLarge    bool
	closed      bool
	log         *slog.Logger
}

var (
	_ ftpserver.FileTransfer      = (*upload)(nil)
	_ ftpserver.FileTransferError = (*upload)(nil)
	_ io.ReaderFrom               = (*upload)(nil)
)

// openUpload starts a STOR of name; allo is the size announced by ALLO, or -1.
func (s *session) openUpload(name string, allo int64) (*upload, error) {
	if rel(name) == "." {
		return nil, clean("stor", name, syscall.EISDIR)
	}
	if fi, err := s.jail.lstat(name); err == nil && fi.IsDir() {
		return nil, clean("stor", name, syscall.EISDIR)
	}
	if !s.srv.enter() {
		return nil, errShuttingDown
	}
	tmp := path.Join(path.Dir(rel(name)), tempPrefix+rand.Text()+".tmp")
	f, err := s.jail.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		s.srv.leave()
		if localFault(err) {
			s.localError()
		}
		return nil, clean("stor", name, err)
	}
	return &upload{
		s:     s,
		name:  path.Clean("/" + name),
		tmp:   tmp,
		f:     f,
		h:     sha256.New(),
		max:   s.srv.opts.MaxUploadBytes,
		allo:  allo,
		start: time.Now(),
		log:   s.log.With(slog.String(keyPath, path.Clean("/"+name)), slog.String(keyVia, "STOR")),
	}, nil
}

// Write appends p to the temporary file, refusing to go past the size cap.
// io.Copy uses ReadFrom instead; Write serves any other caller.
func (u *upload) Write(p []byte) (int, error) {
	if u.max >= 0 && u.size+int64(len(p)) > u.max {
		return 0, u.exceeded()
	}
	n, err := u.write(p)
	u.h.Write(p[:n])
	return n, err
}

// exceeded records that the upload went past the size cap and returns the
// error that makes the library reply 552.
func (u *upload) exceeded() error {
	u.tooLarge = true
	return fmt.Errorf("%w: the limit is %d bytes", ftpserver.ErrStorageExceeded, u.max)
}

// write appends p to the file, counts it and, every writebackEvery bytes,
// asks the kernel to start writing the new pages to disk, so that the fsync
// in commit finds little left to do.
func (u *upload) write(p []byte) (int, error) {
	n, err := u.f.Write(p)
	u.size += int64(n)
	if u.size-u.flushed >= writebackEvery {
		if f, ok := u.f.(*os.File); ok {
			startWriteback(f, u.flushed, u.size-u.flushed)
		}
		u.flushed = u.size
	}
	if err != nil {
		u.s.localError() // the disk or the database failed, not the client
		return n, clean("write", u.name, err)
	}
	return n, nil
}

// localFault reports whether err is this server's failure, which the same
// upload may not meet later: a disk error, or a shared Fs whose database
// does not answer (an error with Temporary() true, as pgfs's are). A bad
// name or path from the client is not.
func localFault(err error) bool {
	var tmp interface{ Temporary() bool }
	if errors.As(err, &tmp) && tmp.Temporary() {
		return true
	}
	for _, local := range []error{syscall.EIO, syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM} {
		if errors.Is(err, local) {
			return true
		}
	}
	return false
}

const (
	copyBufSize    = 512 << 10 // one fill from the data connection
	copyBufCount   = 4         // buffers in flight per upload: reading, writing, hashing, spare
	writebackEvery = 8 << 20   // bytes between two write-back requests
)

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// chunk is one filled buffer travelling through ReadFrom's pipeline.
type chunk struct {
	b *[]byte
	n int
}

// ReadFrom copies the data connection into the file; io.Copy, which
// ftpserverlib uses for a STOR, prefers it to Write. The copy is a
// pipeline of three goroutines passing copyBufCount buffers along:
//
//	this one: fills a buffer from the connection (and applies the size cap)
//	writer:   writes it to the file and starts write-back (see write)
//	hasher:   feeds it to SHA-256, then hands it back for reading
//
// so receiving, writing and hashing overlap instead of taking turns. The
// writer and hasher own u.f, u.size and u.h until ReadFrom returns, which
// it does only after both have finished: Close then sees every byte counted,
// hashed and written.
func (u *upload) ReadFrom(r io.Reader) (int64, error) {
	u.data = dataConnOf(r)
	start := u.size
	free := make(chan *[]byte, copyBufCount)
	for range copyBufCount {
		free <- copyBufs.Get().(*[]byte)
	}
	toWrite := make(chan chunk, copyBufCount)
	toHash := make(chan chunk, copyBufCount)
	hashed := make(chan struct{})
	var (
		werr   error // the writer's error, read after hashed is closed
		failed atomic.Bool
	)
	go func() { // writer
		defer close(toHash)
		for c := range toWrite {
			if werr != nil {
				free <- c.b // drain without writing
				continue
			}
			n, err := u.write((*c.b)[:c.n])
			toHash <- chunk{c.b, n}
			if err != nil {
				werr = err
				failed.Store(true)
			}
		}
	}()
	go func() { // hasher
		defer close(hashed)
		for c := range toHash {
			u.h.Write((*c.b)[:c.n])
			free <- c.b
		}
	}()

	received := start
	var err error
	for err == nil && !failed.Load() {
		b := <-free
		buf := *b
		n := 0
		var rerr error
		for n < len(buf) && rerr == nil {
			var m int
			m, rerr = r.Read(buf[n:])
			n += m
		}
		if u.max >= 0 && received+int64(n) > u.max {
			free <- b
			err = u.exceeded()
			break
		}
		received += int64(n)
		if n > 0 {
			toWrite <- chunk{b, n}
		} else {
			free <- b
		}
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			err = rerr
		} else if rerr != nil {
			break
		}
	}
	close(toWrite)
	<-hashed
	for range copyBufCount {
		copyBufs.Put(<-free)
	}
	if werr != nil {
		err = werr
	}
	return u.size - start, err
}

// Read is not supported: the handle is write-only.
func (u *upload) Read([]byte) (int, error) {
	return 0, clean("read", u.name, fs.ErrPermission)
}

// Seek only reports the current size; resuming is refused earlier, in GetHandle.
func (u *upload) Seek(offset int64, whence int) (int64, error) {
	if offset == 0 && whence == io.SeekCurrent {
		return u.size, nil
	}
	return 0, errNoResume
}

// TransferError records that the transfer did not complete (ABOR, reset or
// dropped connection, idle timeout, write error). Close then discards.
func (u *upload) TransferError(err error) { u.transferErr = err }

// dataConnOf finds the data connection under what ftpserverlib reads a
// STOR from: the connection itself, or a tls.Conn over it.
func dataConnOf(r io.Reader) *idleConn {
	switch c := r.(type) {
	case *idleConn:
		return c
	case *tls.Conn:
		ic, _ := c.NetConn().(*idleConn)
		return ic
	}
	return nil
}

var errAborted = errors.New("transfer aborted: nothing was stored")

// Close ends the upload; the library calls it when the data stream has
// ended, before its reply. A failed transfer is discarded, and so is one
// that only looks complete: aborted meanwhile (see settle) or shorter or
// longer than its ALLO. A complete one is made durable and, if it completes
// an upload (see Options.CompleteOn), queued and handed to OnUpload; otherwise it is
// stored under its name. An error returned here becomes the client's reply
// instead of 226.
func (u *upload) Close() error {
	if u.closed {
		return nil
	}
	u.closed = true
	defer u.s.srv.leave()
	switch {
	case u.tooLarge:
		u.discard()
		u.finish(resultTooLarge, slog.Int64(keyMaxBytes, u.max))
		return nil // the write error is already the transfer's result
	case u.transferErr != nil:
		u.discard()
		u.finish(resultAborted, slog.Any(keyReason, u.transferErr))
		return nil
	}
	if reason := settle(u.s.ctrl, u.data); reason != "" {
		u.discard()
		u.finish(resultAborted, slog.String(keyReason, reason))
		return errAborted
	}
	if u.allo >= 0 && u.size != u.allo {
		u.discard()
		err := fmt.Errorf("transfer incomplete: %d bytes received, ALLO announced %d; nothing was stored", u.size, u.allo)
		u.finish(resultAborted, slog.String(keyReason, err.Error()))
		return err
	}
	if err := u.sync(); err != nil {
		return u.fail(err)
	}
	sum := hex.EncodeToString(u.h.Sum(nil))
	if _, ok := markerFor(u.name); ok && u.s.completeOn(CompleteOnMarker) {
		u.discard() // a marker's content does not matter; it is not kept
		// completeMarker reports the outcome of the upload it completes.
		return u.s.completeMarker(u.name)
	}
	if !triggers(u.name) || !u.s.completeOn(CompleteOnSTOR) {
		if err := u.place(); err != nil {
			return u.fail(err)
		}
		u.finish(resultStored, slog.String(keySHA256, sum))
		return nil
	}
	// The upload is queued under a name of its own: a concurrent or later
	// upload to the same name never touches it.
	q, err := u.s.enqueue(u.tmp)
	if err != nil {
		return u.fail(err)
	}
	u.tmp = ""
	up := u.s.newUpload(u.name, q, u.size, sum, campaignd.ViaSTOR)
	if err := u.s.srv.opts.OnUpload(u.s.srv.ctx, up); err != nil {
		// Without a recorded job the file must not stay: the uploader gets
		// an error and sends it again.
		u.s.unqueue(q, "")
		u.finish(resultFailed, slog.Any(keyError, err))
		u.s.localError()
		return errRecord
	}
	u.finish(resultTriggered, slog.String(keySHA256, sum), slog.String(keyStored, q))
	return nil
}

// fail discards the upload after a disk or store error and returns the
// reply (a 451).
func (u *upload) fail(err error) error {
	if localFault(err) {
		u.s.localError()
	}
	u.discard()
	u.s.srv.events.UploadFinished(resultFailed)
	u.log.Error("upload failed", slog.Any(keyError, err))
	return clean("stor", u.name, err)
}

// sync fsyncs and closes the temporary file.
func (u *upload) sync() error {
	if err := u.f.Sync(); err != nil {
		return err
	}
	err := u.f.Close()
	u.f = nil
	return err
}

// place renames the temporary file to its final name (a file that completes
// no upload) and fsyncs the directory.
func (u *upload) place() error {
	if err := u.s.jail.fs.Rename(u.tmp, u.name); err != nil {
		return err
	}
	u.tmp = ""
	if err := u.s.jail.syncDir(u.name); err != nil {
		_ = u.s.jail.fs.Remove(u.name)
		return err
	}
	return nil
}

// discard closes and removes the temporary file, if still there.
func (u *upload) discard() {
	if u.f != nil {
		_ = u.f.Close()
		u.f = nil
	}
	if u.tmp == "" {
		return
	}
	if err := u.s.jail.fs.Remove(u.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		u.log.Error("remove partial upload", slog.Any(keyError, err))
	}
	u.tmp = ""
}

// finish reports and logs the outcome.
func (u *upload) finish(result string, attrs ...slog.Attr) {
	u.s.srv.events.UploadFinished(result)
	level := slog.LevelInfo
	if result != resultStored && result != resultTriggered {
		level = slog.LevelWarn
	}
	attrs = append(attrs, slog.String(keyResult, result), slog.Int64(keySize, u.size),
		slog.Int64(keyDurationMS, time.Since(u.start).Milliseconds()))
	u.log.LogAttrs(u.s.srv.ctx, level, "upload finished", attrs...)
}
