package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"golang.org/x/crypto/bcrypt"

	"campaignd/internal/testenv"
)

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.csv")
	content := "telefono;mensaje\n123;Hola\n"
	for i := 0; i < 11; i++ {
		content += "55111122" + string(rune('0'+i/10)) + string(rune('0'+i%10)) + ";Hola\n"
	}
	os.WriteFile(good, []byte(content), 0o600)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"check-file", good}, nil, &out, &out); err != nil {
		t.Fatalf("check-file good: %v\n%s", err, out.String())
	}
	for _, want := range []string{"decision:  accepted", "would be pending", "11 valid, 1 invalid", "invalid recipient"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("nombre;mensaje\nAna;Hola\n"), 0o600)
	out.Reset()
	if err := run(context.Background(), []string{"check-file", bad}, nil, &out, &out); err == nil || !strings.Contains(out.String(), "rejected") {
		t.Fatalf("check-file bad: err=%v\n%s", err, out.String())
	}
}

func TestHashPassword(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"hash-password"}, strings.NewReader("hunter22\n"), &out, &out); err != nil {
		t.Fatal(err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(strings.TrimSpace(out.String())), []byte("hunter22")); err != nil {
		t.Fatalf("hash %q does not match: %v", out.String(), err)
	}
	if err := run(context.Background(), []string{"hash-password"}, strings.NewReader(""), &out, &out); err == nil {
		t.Fatal("empty password accepted")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestDemoMode starts `campaignd` with no arguments: random passwords are
// printed once, work, and are not printed again on the next start.
func TestDemoMode(t *testing.T) {
	t.Chdir(t.TempDir())
	for k, v := range map[string]string{"CAMPAIGND_FTP_LISTEN": "127.0.0.1:0", "CAMPAIGND_WEB_LISTEN": "127.0.0.1:0",
		"CAMPAIGND_METRICS_LISTEN": "127.0.0.1:0", "CAMPAIGND_FTP_PASSIVE_PORTS": "1024-65535", "CAMPAIGND_CONFIG": ""} {
		t.Setenv(k, v)
	}
	start := func() (string, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		out := &syncBuffer{}
		done := make(chan error, 1)
		go func() { done <- run(ctx, nil, nil, out, &testLogWriter{tb: t}) }()
		testenv.Eventually(t, 20*time.Second, "demo ready", func() bool { return strings.Contains(out.String(), "Ready.") })
		return out.String(), func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("demo exit: %v", err)
			}
		}
	}
	out, stop := start()
	m := regexp.MustCompile(`FTP  syniverse / (\S+)`).FindStringSubmatch(out)
	addr := regexp.MustCompile(`ftp://syniverse:PASSWORD@(\S+)/`).FindStringSubmatch(out)
	if m == nil || addr == nil || !strings.Contains(out, "web  admin     / ") {
		stop()
		t.Fatalf("demo output lacks the users or the address:\n%s", out)
	}
	c, err := ftp.Dial(addr[1], ftp.DialWithTimeout(5*time.Second))
	if err == nil {
		err = c.Login("syniverse", m[1])
		c.Quit()
	}
	stop()
	if err != nil {
		t.Fatalf("login with the printed password: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join("data", "demo-users.toml"))
	if strings.Contains(string(b), m[1]) || !strings.Contains(string(b), "$2a$") {
		t.Fatal("demo-users.toml must keep only hashes")
	}
	out, stop = start()
	stop()
	if strings.Contains(out, m[1]) || strings.Contains(out, "FTP  syniverse /") {
		t.Fatalf("passwords printed again:\n%s", out)
	}
}

// TestSIGTERMExitsCleanly: the real binary stops on SIGTERM with status 0
// and its store opens again without recovery problems.
func TestSIGTERMExitsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary")
	}
	cfg := writeConfig(t, testConfig(t.TempDir()))
	p := startProc(t, cfg)
	upload(t, p.ftp, "x.csv", csvFile("2020-01-01", 20))
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatal("no exit 20 s after SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0", code)
	}
	p = startProc(t, cfg)
	var l apiList
	apiGet(t, "http://"+p.web, "/api/v1/broadcasts", &l)
	if l.Total != 1 {
		t.Fatalf("after restart: %d broadcasts, want 1", l.Total)
	}
}

// TestCheckFileHostile: check-file applies the ingest bounds — a field over
// the cap is an error with its line, a last line without a line end is a
// warning (an upload by STOR would be rejected), a file of many row errors
// lists at most max_error_rows and counts the rest, a far date and a long
// sender are errors.
func TestCheckFileHostile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	var many strings.Builder
	many.WriteString("phone,message\n")
	for i := 0; i < 12_000; i++ {
		many.WriteString("123,hola\n")
	}
	for _, tc := range []struct {
		name, content string
		accepted      bool
		want          []string
	}{
		{"long-field.csv", "phone,message\n5512345678,hola\n5512345679," + strings.Repeat("x", 70_000) + "\n", false,
			[]string{"decision:  rejected", "  3\t", "longer than 65536 bytes"}},
		{"no-final-newline.csv", "phone,message\n5512345678,hola\n5512345679,hola", true,
			[]string{"decision:  accepted", "warning:   truncated upload: the last line (3) has no line end", "upload completed by STOR is rejected"}},
		{"many-errors.csv", many.String(), false,
			[]string{"and 2000 more row errors not listed (12000 in all)"}},
		{"far-date.csv", "phone,message,date\n5512345678,hola,9999-12-31 23:59\n", false, []string{"more than a year ahead"}},
		{"long-sender.csv", "phone,message,from\n5512345678,hola,ABCDEFGHIJKL\n", false, []string{"12 GSM-7 characters long"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), []string{"check-file", write(tc.name, tc.content)}, nil, &out, &out)
			if (err == nil) != tc.accepted {
				t.Fatalf("err = %v\n%.2000s", err, out.String())
			}
			for _, want := range tc.want {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%.2000s", want, out.String())
				}
			}
			if n := strings.Count(out.String(), "\n"); n > 10_020 {
				t.Errorf("%d lines of output", n)
			}
		})
	}
}
