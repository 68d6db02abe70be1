package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"golang.org/x/crypto/bcrypt"
)

const (
	testFTPUser = "syniverse"
	testPass    = "s3cret-pass"
	testAdmin   = "admin"
)

var (
	hashOnce sync.Once
	testHash string
)

// testPasswordHash is a cheap bcrypt hash of testPass for test users.
func testPasswordHash() string {
	hashOnce.Do(func() {
		h, _ := bcrypt.GenerateFromPassword([]byte(testPass), bcrypt.MinCost)
		testHash = string(h)
	})
	return testHash
}

// testConfig is a configuration on 127.0.0.1:0 ports in dir, with the
// bundled simulator delivering 100 % after a short delay.
func testConfig(dir string) Config {
	c := DefaultConfig()
	c.DataDir = dir
	c.Log.Level = "warn"
	c.FTP.Listen = "127.0.0.1:0"
	c.FTP.PassivePorts = "1024-65535"
	c.Web.Listen = "127.0.0.1:0"
	c.Metrics.Listen = "127.0.0.1:0"
	c.FTP.Users = []FTPUser{{Name: testFTPUser, PasswordHash: testPasswordHash()}}
	c.Web.Users = []WebUser{
		{Name: testAdmin, PasswordHash: testPasswordHash(), Role: "admin"},
		{Name: "viewer", PasswordHash: testPasswordHash(), Role: "viewer"},
	}
	c.SMPP.TPS = 0
	c.Simulator.DeliveredPercent = 100
	c.Simulator.ReceiptDelay = Duration(50 * time.Millisecond)
	return c
}

// MustRunMain starts the real Main with c and closes it at the end of the
// test.
func MustRunMain(tb testing.TB, c Config) *Main {
	tb.Helper()
	m := NewMain(io.Discard, &testLogWriter{tb: tb})
	m.Config = c
	if err := m.Config.Validate(); err != nil {
		tb.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		m.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Error(err)
		}
	})
	return m
}

type testLogWriter struct {
	mu sync.Mutex
	tb testing.TB
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tb.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// ftpLogin connects a real FTP client to addr.
func ftpLogin(tb testing.TB, addr string) *ftp.ServerConn {
	tb.Helper()
	c, err := ftp.Dial(addr, ftp.DialWithTimeout(5*time.Second))
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.Login(testFTPUser, testPass); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Quit() })
	return c
}

// upload stores content as name over FTP; it returns once the 226 arrived.
func upload(tb testing.TB, addr, name, content string) {
	tb.Helper()
	c := ftpLogin(tb, addr)
	if err := c.Stor(name, strings.NewReader(content)); err != nil {
		tb.Fatalf("STOR %s: %v", name, err)
	}
}

// apiGet GETs an API path as admin and decodes the JSON answer into v.
func apiGet(tb testing.TB, base, path string, v any) int {
	tb.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.SetBasicAuth(testAdmin, testPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil && resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			tb.Fatal(err)
		}
	}
	return resp.StatusCode
}

// apiPost POSTs body to an API path as user and returns the status code.
func apiPost(tb testing.TB, base, method, path, user, body string) (int, string) {
	tb.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.SetBasicAuth(user, testPass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func csvFile(date string, n int) string {
	var b strings.Builder
	b.WriteString("Recipient,Message,Payback Member ID,Campaign Name,Date\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "55%08d,\"Hola socio %d, tienes puntos\",600%07d,Prueba,%s\n", i, i, i, date)
	}
	return b.String()
}

func jail(m *Main) string { return filepath.Join(m.Config.DataDir, "ftp", testFTPUser) }
