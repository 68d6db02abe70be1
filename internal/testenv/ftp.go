package testenv

import (
	"io"
	"testing"

	"github.com/jlaffaye/ftp"
)

// Retr downloads name over c and returns its content, failing the test on
// an error.
func Retr(tb testing.TB, c *ftp.ServerConn, name string) string {
	tb.Helper()
	r, err := c.Retr(name)
	if err != nil {
		tb.Fatalf("RETR %s: %v", name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		tb.Fatalf("RETR %s: %v", name, err)
	}
	return string(b)
}
