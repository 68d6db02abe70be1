package ftpd_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"campaignd/ftpd"
	"campaignd/internal/testenv"
)

// vsftpd runs a real vsftpd on 127.0.0.1 for the test: anonymous login,
// uploads allowed in /inbox, explicit TLS with require_ssl_reuse (the
// default), which only passes if data connections resume the control
// connection's TLS session.
type vsftpd struct {
	addr  string
	inbox string
	cert  pushCert
}

func startVsftpd(t *testing.T) *vsftpd {
	t.Helper()
	bin, err := exec.LookPath("vsftpd")
	if err != nil {
		testenv.Missing(t, "vsftpd not installed (apt-get install vsftpd); skipping the push to a real vsftpd")
	}
	if os.Geteuid() != 0 {
		testenv.Missing(t, "vsftpd needs root to chroot its anonymous users; skipping")
	}
	ftpUser, err := user.Lookup("ftp")
	if err != nil {
		testenv.Missing(t, "no 'ftp' system user for vsftpd's anonymous sessions; skipping")
	}
	uid, _ := strconv.Atoi(ftpUser.Uid)
	gid, _ := strconv.Atoi(ftpUser.Gid)

	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root") // anonymous root: not writable, as vsftpd demands
	inbox := filepath.Join(root, "inbox")
	empty := filepath.Join(dir, "empty")
	for _, d := range []string{root, inbox, empty} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(inbox, uid, gid); err != nil {
		t.Fatal(err)
	}
	v := &vsftpd{inbox: inbox, cert: newPushCert(t)}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, v.cert.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, v.cert.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	pasv := testenv.FreePort(t)
	v.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	conf := fmt.Sprintf(`listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=%d
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=%s
anon_upload_enable=YES
anon_other_write_enable=YES
anon_world_readable_only=NO
anon_umask=022
write_enable=YES
local_enable=NO
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port=%d
pasv_max_port=%d
port_enable=NO
secure_chroot_dir=%s
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
xferlog_enable=NO
vsftpd_log_file=%s
ssl_enable=YES
allow_anon_ssl=YES
force_anon_logins_ssl=NO
force_anon_data_ssl=NO
require_ssl_reuse=YES
ssl_ciphers=HIGH
rsa_cert_file=%s
rsa_private_key_file=%s
`, port, root, pasv, pasv, empty, filepath.Join(dir, "vsftpd.log"), certFile, keyFile)
	confFile := filepath.Join(dir, "vsftpd.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, confFile)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Skipf("vsftpd did not start: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", v.addr, time.Second)
		if err == nil {
			c.Close()
			return v
		}
		select {
		case <-exited:
			t.Skipf("vsftpd exited at start-up: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Skipf("vsftpd not listening on %s after 10s: %s", v.addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPushToVsftpd(t *testing.T) {
	v := startVsftpd(t)
	for _, tc := range []struct {
		name, mode string
		maxTLS     uint16
	}{
		{"plain", ftpd.TLSOff, 0},
		{"explicit TLS 1.3", ftpd.TLSExplicit, 0},
		{"explicit TLS 1.2", ftpd.TLSExplicit, tls.VersionTLS12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ftpd.NewPusher(ftpd.PushOptions{URL: "ftp://anonymous:x@" + v.addr + "/inbox", TLS: tc.mode, Timeout: 10 * time.Second,
				TLSConfig: &tls.Config{RootCAs: v.cert.pool, MaxVersion: tc.maxTLS}})
			if err != nil {
				t.Fatal(err)
			}
			name := "report_20261121_" + strings.ReplaceAll(tc.name, " ", "_") + ".csv"
			for i, data := range [][]byte{pushPayload(2 << 20), []byte("Sender,Recipient\n")} {
				// The second push replaces the first under the same name.
				if err := p.Push(context.Background(), name, bytes.NewReader(data), int64(len(data))); err != nil {
					t.Fatalf("push %d: %v", i, err)
				}
				got, err := os.ReadFile(filepath.Join(v.inbox, name))
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("push %d: vsftpd has %d bytes (%v), want %d", i, len(got), err, len(data))
				}
			}
			entries, _ := os.ReadDir(v.inbox)
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".part") {
					t.Fatalf("left %s", e.Name())
				}
			}
		})
	}
}
