package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"campaignd/internal/testenv"
)

// The upload sizes: 256 MiB is dominated by the data path, 16 MiB shows the
// fixed cost per file (EPSV, STOR, data connection set-up, fsync, rename).
var uploadSizes = []struct {
	name string
	size int64
}{
	{"16MiB", 16 << 20},
	{"256MiB", 256 << 20},
}

// patternBlock is the repeating content of every upload: 1 MiB of a pattern
// that is not all one byte (so nothing in the path can cheat on zeroes).
var patternBlock = func() []byte {
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}()

// patternReader yields n bytes of patternBlock, repeated, from memory.
// io.Copy (which jlaffaye/ftp's Stor uses) takes WriteTo, so the client
// writes 1 MiB at a time straight from patternBlock and spends next to no
// CPU on making the data, leaving the cores to the servers.
type patternReader struct {
	left int64
	off  int // offset in patternBlock
}

func newPatternReader(n int64) *patternReader { return &patternReader{left: n} }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := copy(p, patternBlock[r.off:])
	r.off = (r.off + n) % len(patternBlock)
	r.left -= int64(n)
	return n, nil
}

func (r *patternReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for r.left > 0 {
		chunk := patternBlock[r.off:]
		if int64(len(chunk)) > r.left {
			chunk = chunk[:r.left]
		}
		n, err := w.Write(chunk)
		total += int64(n)
		r.left -= int64(n)
		r.off = (r.off + n) % len(patternBlock)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// settle flushes dirty pages (earlier uploads, other processes) to disk
// before a measurement starts, so one server does not pay for the
// write-back of another's files.
func settle() { syscall.Sync() }

// reportSync measures a sync(2) after the timed loop and reports it per
// upload as "sync-ms/op". campaignd fsyncs every upload before replying 226,
// vsftpd does not; this metric shows what vsftpd's data would still cost to
// reach the disk. Untimed; informative only (other processes' dirty pages
// are flushed too).
func reportSync(b *testing.B, uploads int) {
	b.StopTimer()
	start := time.Now()
	syscall.Sync()
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(max(uploads, 1)), "sync-ms/op")
}

// BenchmarkFTPUpload measures STOR throughput over plain FTP on 127.0.0.1
// with one client library, github.com/jlaffaye/ftp, against campaignd's
// embedded server and against vsftpd, uploading the same bytes from memory.
// Each upload has a new name, so neither server truncates or replaces a file
// in the timed region. SPEC §10: campaignd must reach 80 % of vsftpd.
//
//	go test ./bench/ -run '^$' -bench FTPUpload -benchtime 5x -count 5
func BenchmarkFTPUpload(b *testing.B) {
	for _, sz := range uploadSizes {
		b.Run("size="+sz.name, func(b *testing.B) {
			for _, srv := range servers {
				b.Run("server="+srv, func(b *testing.B) {
					t := startTarget(b, srv)
					c := t.dial(b)
					settle()
					b.SetBytes(sz.size)
					n := 0
					for b.Loop() {
						n++
						if err := c.Stor(t.remote(fmt.Sprintf("upload-%d.csv", n)), newPatternReader(sz.size)); err != nil {
							b.Fatalf("%s: STOR: %v", srv, err)
						}
					}
					reportSync(b, n)
					checkUploaded(b, t, fmt.Sprintf("upload-%d.csv", n), sz.size)
				})
			}
		})
	}
}

// BenchmarkFTPUploadCurl is BenchmarkFTPUpload with a second, independent
// client: curl -T, one process per upload, sending the same file from disk
// (written once and kept in the page cache) to both servers. Each upload
// includes curl's start-up and login, a few milliseconds.
func BenchmarkFTPUploadCurl(b *testing.B) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		b.Skip("curl not installed; skipping the curl comparison")
	}
	dir := b.TempDir()
	for _, sz := range uploadSizes {
		src := filepath.Join(dir, "source-"+sz.name+".csv")
		writePatternFile(b, src, sz.size)
		b.Run("size="+sz.name, func(b *testing.B) {
			for _, srv := range servers {
				b.Run("server="+srv, func(b *testing.B) {
					t := startTarget(b, srv)
					settle()
					b.SetBytes(sz.size)
					n := 0
					for b.Loop() {
						n++
						curlUpload(b, curl, src, t.url(fmt.Sprintf("upload-%d.csv", n)))
					}
					reportSync(b, n)
					checkUploaded(b, t, fmt.Sprintf("upload-%d.csv", n), sz.size)
				})
			}
		})
	}
}

// writePatternFile writes size bytes of the upload pattern to name.
func writePatternFile(tb testing.TB, name string, size int64) {
	tb.Helper()
	f, err := os.Create(name)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(f, newPatternReader(size)); err != nil {
		f.Close()
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// curlUpload runs curl -T src url over plain FTP, passive mode (EPSV first,
// as jlaffaye/ftp does). curl's protocol trace (a dozen lines) is kept and
// shown only if the upload fails or hangs past two minutes.
func curlUpload(tb testing.TB, curl, src, url string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, curl, "--silent", "--show-error", "--verbose", "--trace-time",
		"--ftp-pasv", "-T", src, url)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		tb.Fatalf("curl -T %s: %v\n%s", filepath.Base(src), err, out.String())
	}
}

// TestVsftpdHarness checks that the vsftpd harness starts vsftpd and that a
// 1 KiB upload round-trips, and that the campaignd harness does the same, so
// go test ./... exercises what the benchmarks rely on.
func TestVsftpdHarness(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv, func(t *testing.T) {
			tg := startTarget(t, srv)
			c := tg.dial(t)
			data := make([]byte, 1024)
			if _, err := io.ReadFull(newPatternReader(1024), data); err != nil {
				t.Fatal(err)
			}
			if err := c.Stor(tg.remote("harness.csv"), bytes.NewReader(data)); err != nil {
				t.Fatalf("STOR: %v", err)
			}
			checkUploaded(t, tg, "harness.csv", 1024)
			r, err := c.Retr(tg.remote("harness.csv"))
			if err != nil {
				t.Fatalf("RETR: %v", err)
			}
			got, err := io.ReadAll(r)
			if cerr := r.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatalf("RETR: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("RETR returned %d bytes that differ from the 1024 uploaded", len(got))
			}
			if onDisk, err := os.ReadFile(filepath.Join(tg.disk, "harness.csv")); err != nil || !bytes.Equal(onDisk, data) {
				t.Fatalf("file on disk: %d bytes, %v; want the 1024 uploaded", len(onDisk), err)
			}
		})
	}
}

// TestCurlHarness checks that curl -T uploads to both servers the way
// BenchmarkFTPUploadCurl runs it.
func TestCurlHarness(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		testenv.Missing(t, "curl not installed; skipping")
	}
	src := filepath.Join(t.TempDir(), "source.csv")
	writePatternFile(t, src, 64<<10)
	for _, srv := range servers {
		t.Run(srv, func(t *testing.T) {
			tg := startTarget(t, srv)
			curlUpload(t, curl, src, tg.url("curl.csv"))
			checkUploaded(t, tg, "curl.csv", 64<<10)
		})
	}
}

func TestPatternReader(t *testing.T) {
	const n = 3<<20 + 12345
	var viaWriteTo bytes.Buffer
	if _, err := io.Copy(&viaWriteTo, newPatternReader(n)); err != nil {
		t.Fatal(err)
	}
	viaRead, err := io.ReadAll(io.LimitReader(struct{ io.Reader }{newPatternReader(n)}, n+1))
	if err != nil {
		t.Fatal(err)
	}
	if viaWriteTo.Len() != n || !bytes.Equal(viaRead, viaWriteTo.Bytes()) {
		t.Fatalf("WriteTo gave %d bytes, Read %d; want %d identical", viaWriteTo.Len(), len(viaRead), n)
	}
	if !bytes.Equal(viaRead[1<<20:2<<20], patternBlock) {
		t.Fatal("the second MiB is not the pattern")
	}
}
