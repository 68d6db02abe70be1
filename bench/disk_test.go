package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkDiskWrite is the floor under the FTP numbers: writing 256 MiB to
// a new file in the temporary directory in 256 KiB writes (campaignd's copy
// buffer), with and without the fsync that campaignd does before it replies
// 226 and vsftpd does not.
//
//	go test ./bench/ -run '^$' -bench DiskWrite -benchtime 5x -count 5
func BenchmarkDiskWrite(b *testing.B) {
	const size = 256 << 20
	for _, fsync := range []bool{false, true} {
		name := "fsync=false"
		if fsync {
			name = "fsync=true"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			buf := make([]byte, 256<<10)
			if _, err := newPatternReader(int64(len(buf))).Read(buf); err != nil {
				b.Fatal(err)
			}
			settle()
			b.SetBytes(size)
			n := 0
			for b.Loop() {
				n++
				f, err := os.Create(filepath.Join(dir, fmt.Sprintf("file-%d.bin", n)))
				if err != nil {
					b.Fatal(err)
				}
				for left := size; left > 0; left -= len(buf) {
					if _, err := f.Write(buf); err != nil {
						b.Fatal(err)
					}
				}
				if fsync {
					if err := f.Sync(); err != nil {
						b.Fatal(err)
					}
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
			}
			reportSync(b, n)
		})
	}
}
