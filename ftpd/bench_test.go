package ftpd

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
)

// pattern is what patternReader repeats.
var pattern = func() []byte {
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}()

// patternReader yields left bytes of pattern, cheaply, so the client spends
// its CPU on the protocol rather than on making data.
type patternReader struct {
	left int64
	off  int
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := copy(p, pattern[r.off:])
	r.off = (r.off + n) % len(pattern)
	r.left -= int64(n)
	return n, nil
}

// BenchmarkUpload measures loopback STOR throughput with jlaffaye/ftp
// (plain FTP, .csv name so the whole commit path runs, fsync included).
// Compare with vsftpd using the same client: go test -bench Upload -benchtime 5x ./ftpd/
func BenchmarkUpload(b *testing.B) {
	const size = 256 << 20
	var calls atomic.Int64
	ts := mustOpenServer(b, func(o *Options) {
		o.MaxUploadBytes = -1
		o.Logger = slog.New(slog.DiscardHandler)
		o.OnUpload = func(context.Context, Upload) error { calls.Add(1); return nil }
	})
	c := ts.dial(b)
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		if err := c.Stor("bench.csv", &patternReader{left: size}); err != nil {
			b.Fatalf("Stor: %v", err)
		}
	}
	b.StopTimer()
	if calls.Load() == 0 {
		b.Fatal("no upload recorded")
	}
}
