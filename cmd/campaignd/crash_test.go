package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"

	"campaignd"
	"campaignd/internal/testenv"
	"campaignd/smpp"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// campaigndBinary builds the real binary once per test run.
func campaigndBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "campaignd-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "campaignd")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is campaignd running as a child process.
type proc struct {
	cmd            *exec.Cmd
	ftp, web, metr string
	done           chan struct{}
}

var readyLine = regexp.MustCompile(`campaignd ready"? ftp=(\S+) web=(\S+) metrics=(\S+)`)

// startProc runs `campaignd serve --config` and waits for its ready line.
// The process is killed at the end of the test whatever happens.
func startProc(t *testing.T, configPath string) *proc {
	t.Helper()
	cmd := exec.Command(campaigndBinary(t), "serve", "--config", configPath)
	cmd.Env = append(os.Environ(), "GOMEMLIMIT=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	t.Cleanup(func() { p.kill() })
	ready := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				ready <- m
			}
		}
		cmd.Wait()
		close(p.done)
	}()
	select {
	case m := <-ready:
		p.ftp, p.web, p.metr = m[1], m[2], m[3]
	case <-p.done:
		t.Fatal("campaignd exited before it was ready")
	case <-time.After(30 * time.Second):
		t.Fatal("campaignd not ready after 30 s")
	}
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	if p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

func writeConfig(t *testing.T, c Config) string {
	t.Helper()
	c.Log.Level = "info"
	b, err := toml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "campaignd.toml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCrashBetween226AndIngest kills the process right after the 226 of a
// big upload, while ingest runs; after a restart exactly one broadcast
// exists, with every row.
func TestCrashBetween226AndIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	dir := t.TempDir()
	c := testConfig(dir)
	cfg := writeConfig(t, c)
	const rows = 200_000
	content := csvFile("", rows)
	p := startProc(t, cfg)
	upload(t, p.ftp, "big.csv", content)
	p.kill()
	midIngest := fileExists(filepath.Join(dir, "ftp", testFTPUser, "big.csv"))
	t.Logf("killed after the 226; file still unprocessed: %v", midIngest)

	p = startProc(t, cfg)
	base := "http://" + p.web
	var l apiList
	testenv.Eventually(t, 30*time.Second, "the broadcast after restart", func() bool {
		apiGet(t, base, "/api/v1/broadcasts", &l)
		return l.Total > 0
	})
	time.Sleep(500 * time.Millisecond) // a second broadcast would appear now
	apiGet(t, base, "/api/v1/broadcasts", &l)
	if l.Total != 1 || l.Broadcasts[0].Counts.Total != rows {
		t.Fatalf("after restart: %d broadcasts, first %+v; want exactly 1 with %d messages", l.Total, l.Broadcasts, rows)
	}
	if !fileExists(filepath.Join(dir, "ftp", testFTPUser, "processed", "big.csv")) {
		t.Fatal("file not in processed/")
	}
}

// TestCrashWhileSending kills the process at random points while it sends
// (several rounds) to a simulator that outlives it: every message reaches a
// final status, and duplicates are at most smpp.window per crash.
func TestCrashWhileSending(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	sim := smpp.NewSimulator(smpp.SimOptions{Listen: "127.0.0.1:0", DeliveredPercent: 100, ReceiptDelay: 20 * time.Millisecond, TrackDests: true})
	if err := sim.Open(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dir := t.TempDir()
	c := testConfig(dir)
	c.SMPP.Addr = sim.Addr()
	c.SMPP.TPS = 1000
	c.SMPP.Window = 10
	cfg := writeConfig(t, c)
	const rows = 3000
	p := startProc(t, cfg)
	upload(t, p.ftp, "crash.csv", csvFile("2020-01-01", rows))

	crashes := 0
	for round := 0; round < 4; round++ {
		time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond)
		p.kill()
		crashes++
		p = startProc(t, cfg)
	}
	base := "http://" + p.web
	var l apiList
	testenv.Eventually(t, 30*time.Second, "the broadcast", func() bool { apiGet(t, base, "/api/v1/broadcasts", &l); return l.Total == 1 })
	var b apiBroadcast
	testenv.Eventually(t, 60*time.Second, "every message final", func() bool {
		apiGet(t, base, fmt.Sprintf("/api/v1/broadcasts/%d", l.Broadcasts[0].ID), &b)
		return b.Status == campaignd.StatusCompleted && b.Counts.Delivered+b.Counts.Failed+b.Counts.Unknown == rows
	})
	st := sim.Stats()
	dups := duplicates(st)
	t.Logf("%d crashes: %d messages, %d submits, %d recipients, %d duplicates (bar: ≤ %d)", crashes, rows, st.Submits, len(st.PerDest), dups, c.SMPP.Window*crashes)
	if len(st.PerDest) != rows {
		t.Fatalf("%d recipients got a message, want %d", len(st.PerDest), rows)
	}
	if dups > c.SMPP.Window*crashes {
		t.Fatalf("%d duplicates after %d crashes, bar %d", dups, crashes, c.SMPP.Window*crashes)
	}
	if b.Counts.Delivered != rows {
		t.Fatalf("counts = %+v", b.Counts)
	}
}
