package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"golang.org/x/crypto/bcrypt"

	"campaignd/ftpd"
	"campaignd/internal/testenv"
)

// ftpTarget is one FTP server under test, reachable over plain FTP on
// loopback by a client that logs in as user/pass and STORs into dir.
type ftpTarget struct {
	name       string // "campaignd" or "vsftpd"
	addr       string // host:port of the control connection
	user, pass string
	dir        string // FTP directory to upload into, "/" or "/inbox"
	disk       string // where dir is on the local disk, to check uploads
}

// remote returns the FTP path of file name in the upload directory.
func (t ftpTarget) remote(name string) string {
	if t.dir == "/" {
		return "/" + name
	}
	return t.dir + "/" + name
}

// url returns an ftp:// URL for file name, for curl.
func (t ftpTarget) url(name string) string {
	u := url.URL{Scheme: "ftp", User: url.UserPassword(t.user, t.pass), Host: t.addr, Path: t.remote(name)}
	return u.String()
}

// dial logs in with github.com/jlaffaye/ftp, the client both servers are
// measured with, and quits in tb.Cleanup.
func (t ftpTarget) dial(tb testing.TB) *ftp.ServerConn {
	tb.Helper()
	c, err := ftp.Dial(t.addr, ftp.DialWithTimeout(10*time.Second))
	if err != nil {
		tb.Fatalf("%s: dial %s: %v", t.name, t.addr, err)
	}
	tb.Cleanup(func() { _ = c.Quit() })
	if err := c.Login(t.user, t.pass); err != nil {
		tb.Fatalf("%s: login: %v", t.name, err)
	}
	return c
}

// startTarget starts the named server for tb; it skips when the server
// cannot run on this machine (vsftpd only).
func startTarget(tb testing.TB, name string) ftpTarget {
	tb.Helper()
	switch name {
	case "campaignd":
		return startCampaignd(tb)
	case "vsftpd":
		return startVsftpd(tb)
	}
	tb.Fatalf("unknown server %q", name)
	return ftpTarget{}
}

var servers = []string{"campaignd", "vsftpd"}

const (
	benchUser = "bench"
	benchPass = "bench-password"
)

// startCampaignd opens campaignd's embedded FTP server on 127.0.0.1:0 with
// one user, no upload cap and no OnUpload callback (nothing triggers, but
// every STOR still goes through the temporary file, SHA-256, fsync and
// rename), and closes it in tb.Cleanup.
func startCampaignd(tb testing.TB) ftpTarget {
	tb.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(benchPass), bcrypt.MinCost)
	if err != nil {
		tb.Fatal(err)
	}
	root := tb.TempDir()
	s, err := ftpd.New(ftpd.Options{
		Listen:         "127.0.0.1:0",
		Root:           root,
		Users:          []ftpd.User{{Name: benchUser, PasswordHash: string(hash)}},
		MaxUploadBytes: -1,
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			tb.Errorf("campaignd: close: %v", err)
		}
	})
	return ftpTarget{name: "campaignd", addr: s.Addr(), user: benchUser, pass: benchPass,
		dir: "/", disk: filepath.Join(root, benchUser)}
}

// startVsftpd runs /usr/sbin/vsftpd (or whatever vsftpd is on PATH) as a
// child process on 127.0.0.1, with a generated configuration: anonymous
// login, uploads into /inbox, passive mode only, no TLS, no logging. It is
// killed in tb.Cleanup, also when the benchmark fails.
//
// vsftpd refuses to chroot anonymous users into a writable directory, so the
// anonymous root is 0755 and owned by root and the upload directory below it
// belongs to the "ftp" user that anonymous sessions run as. That needs root.
func startVsftpd(tb testing.TB) ftpTarget {
	tb.Helper()
	bin, err := exec.LookPath("vsftpd")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/vsftpd"); err != nil {
			testenv.Missing(tb, "vsftpd not installed (apt-get install -y vsftpd); skipping the vsftpd comparison")
		}
	}
	if os.Geteuid() != 0 {
		testenv.Missing(tb, "vsftpd needs root to chroot its anonymous sessions; skipping the vsftpd comparison")
	}
	ftpUser, err := user.Lookup("ftp")
	if err != nil {
		testenv.Missing(tb, `no "ftp" system user for vsftpd's anonymous sessions; skipping the vsftpd comparison`)
	}
	uid, _ := strconv.Atoi(ftpUser.Uid)
	gid, _ := strconv.Atoi(ftpUser.Gid)

	dir := tb.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	root := filepath.Join(dir, "root")    // anon_root: must not be writable
	inbox := filepath.Join(root, "inbox") // owned by ftp: anonymous uploads land here
	empty := filepath.Join(dir, "empty")  // secure_chroot_dir: empty, owned by root
	for _, d := range []string{root, inbox, empty} {
		if err := os.Mkdir(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.Chown(inbox, uid, gid); err != nil {
		tb.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(tb)))
	_, port, _ := net.SplitHostPort(addr)
	conf := fmt.Sprintf(`listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=%s
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=%s
anon_upload_enable=YES
anon_world_readable_only=NO
anon_umask=022
write_enable=YES
local_enable=NO
pasv_enable=YES
pasv_address=127.0.0.1
port_enable=NO
secure_chroot_dir=%s
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
xferlog_enable=NO
ssl_enable=NO
vsftpd_log_file=%s
`, port, root, empty, filepath.Join(dir, "vsftpd.log"))
	confFile := filepath.Join(dir, "vsftpd.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}

	var out bytes.Buffer
	cmd := exec.Command(bin, confFile)
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so the cleanup also ends the per-session
	// processes vsftpd forks.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("vsftpd: start: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	// Registered right after Start, so vsftpd dies whatever happens next.
	tb.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})

	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			// Wait for the 220 greeting: then vsftpd is really serving.
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			greeting := make([]byte, 3)
			_, err = io.ReadFull(c, greeting)
			c.Close()
			if err == nil && string(greeting) == "220" {
				break
			}
		}
		select {
		case <-exited:
			tb.Fatalf("vsftpd exited at start-up: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("vsftpd: not serving on %s after 10s (%v): %s", addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ftpTarget{name: "vsftpd", addr: addr, user: "anonymous", pass: "bench@",
		dir: "/inbox", disk: inbox}
}

// checkUploaded fails tb unless file name exists in t's upload directory
// with size bytes.
func checkUploaded(tb testing.TB, t ftpTarget, name string, size int64) {
	tb.Helper()
	fi, err := os.Stat(filepath.Join(t.disk, name))
	if err != nil {
		tb.Fatalf("%s: uploaded file: %v", t.name, err)
	}
	if fi.Size() != size {
		tb.Fatalf("%s: %s has %d bytes, want %d", t.name, name, fi.Size(), size)
	}
}
