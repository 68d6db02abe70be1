package pgfs_test

import (
	"bytes"
	"io"
	"testing"

	"campaignd/internal/testenv"

	"github.com/spf13/afero"
)

const benchSize = 100 << 20

// BenchmarkFile100MB writes and reads back a 100 MB file in 32 KiB writes
// and reads (what an FTP transfer does), on pgfs and on the local disk
// (afero.OsFs, with an fsync before Close like ftpd's uploads), for MB/s:
//
//	go test -run X -bench File100MB -benchtime 3x ./pgfs/
func BenchmarkFile100MB(b *testing.B) {
	data := make([]byte, benchSize)
	io.ReadFull(newPattern(benchSize), data)
	p := testenv.StartPostgres(b)
	db, _ := mustOpen(b, p)
	for _, c := range []struct {
		name string
		fs   func(b *testing.B) afero.Fs
	}{
		{"pgfs", func(*testing.B) afero.Fs { return db.Fs("/") }},
		{"osfs", func(b *testing.B) afero.Fs { return afero.NewBasePathFs(afero.NewOsFs(), b.TempDir()) }},
	} {
		b.Run(c.name+"/write", func(b *testing.B) {
			fsys := c.fs(b)
			b.SetBytes(benchSize)
			for b.Loop() {
				f, err := fsys.Create("/big")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(struct{ io.Writer }{f}, bytes.NewReader(data), make([]byte, 32<<10)); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/read", func(b *testing.B) {
			fsys := c.fs(b)
			if err := afero.WriteFile(fsys, "/big", data, 0o644); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(benchSize)
			for b.Loop() {
				f, err := fsys.Open("/big")
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, make([]byte, 32<<10))
				if err != nil || n != benchSize {
					b.Fatal(n, err)
				}
				f.Close()
			}
		})
	}
}
