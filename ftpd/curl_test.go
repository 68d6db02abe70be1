package ftpd

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"campaignd/internal/testenv"
)

// TestCurlUpload checks interoperability with a second, independent client.
func TestCurlUpload(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		testenv.Missing(t, "curl not installed; skipping the curl interoperability test")
	}
	cert := newTestCert(t)
	for _, tc := range []struct {
		name string
		mode string
		args []string
	}{
		{"plain", TLSOff, nil},
		{"explicit TLS", TLSExplicit, []string{"--ssl-reqd", "--cacert", cert.certFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := mustOpenServer(t, func(o *Options) {
				o.TLSMode = tc.mode
				o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert.cert}}
			})
			data := append([]byte("recipient,message\n"), randomBytes(t, 500_000)...)
			src := filepath.Join(t.TempDir(), "campaign.csv")
			if err := os.WriteFile(src, data, 0o600); err != nil {
				t.Fatal(err)
			}
			u := url.URL{Scheme: "ftp", User: url.UserPassword(testUser, testPass), Host: ts.Addr(), Path: "/"}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			args := append([]string{"--silent", "--show-error", "--max-time", "20", "-T", src, u.String()}, tc.args...)
			out, err := exec.CommandContext(ctx, curl, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("curl: %v\n%s", err, out)
			}
			got := ts.rec.list()
			if len(got) != 1 {
				t.Fatalf("OnUpload called %d times, want 1", len(got))
			}
			if got[0].Path != "/campaign.csv" || got[0].SHA256 != sha256Hex(data) || got[0].Size != int64(len(data)) {
				t.Errorf("Upload = %+v", got[0])
			}
		})
	}
}

// A real client process killed mid-upload (SIGKILL: the kernel closes its
// sockets) never triggers and leaves nothing, at several points of the file.
func TestCurlKilledMidUpload(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		testenv.Missing(t, "curl not installed; skipping the killed-client test")
	}
	for _, after := range []int64{1, 300_000, 1_500_000} {
		t.Run(fmt.Sprint(after), func(t *testing.T) {
			ts := mustOpenServer(t, nil)
			src := filepath.Join(t.TempDir(), "campaign.csv")
			if err := os.WriteFile(src, randomBytes(t, 4_000_000), 0o600); err != nil {
				t.Fatal(err)
			}
			u := url.URL{Scheme: "ftp", User: url.UserPassword(testUser, testPass), Host: ts.Addr(), Path: "/"}
			cmd := exec.Command(curl, "--silent", "--limit-rate", "1M", "--max-time", "60", "-T", src, u.String())
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
			// Kill it once the partial file on disk has reached the point.
			testenv.Wait(t, "partial upload", func() bool {
				for _, n := range filesIn(t, ts.jail()) {
					if fi, err := os.Stat(filepath.Join(ts.jail(), n)); err == nil && fi.Size() >= after {
						return true
					}
				}
				return false
			})
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-done
			testenv.Wait(t, "aborted event", func() bool { return ts.ev.get("upload:aborted") == 1 })
			ts.noTrace(t, ".")
		})
	}
}
