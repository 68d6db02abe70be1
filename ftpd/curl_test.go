package ftpd

import (
	"context"
	"crypto/tls"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
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
