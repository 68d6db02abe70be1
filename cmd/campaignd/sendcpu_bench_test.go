package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"campaignd/internal/testenv"
)

// BenchmarkSendCPU measures the sending path of the real binary end to end:
// campaignd against the simulator running in another process (`campaignd
// smsc-sim`), no TPS cap, receipts on (50 ms), every state change durable.
// It reports campaignd's CPU per message (utime + stime from /proc, from the
// broadcast visible to every message settled), messages per second over the
// same span and campaignd's peak RSS.
//
//	go test ./cmd/campaignd/ -run '^$' -bench SendCPU -benchtime 1x -count 3
//
// Environment: SENDCPU_ROWS (default 50000), SENDCPU_WINDOW (200),
// SENDCPU_SMAPS (a file name prefix: campaignd's /proc smaps at the end), SENDCPU_PERF (a file name prefix: record a perf profile of each run), SENDCPU_BINDS (unset: the key is left out, so an older binary can be
// compared), CAMPAIGND_BIN (a prebuilt binary instead of building this tree).
func BenchmarkSendCPU(b *testing.B) {
	rows := envInt("SENDCPU_ROWS", 50000)
	window := envInt("SENDCPU_WINDOW", 200)
	bin := os.Getenv("CAMPAIGND_BIN")
	if bin == "" {
		bin = buildBinary(b)
	}
	csv := csvFile("2020-01-01", rows)
	for i := 0; i < b.N; i++ {
		simAddr := startSimProc(b, bin)
		dir := b.TempDir()
		binds := ""
		if v := os.Getenv("SENDCPU_BINDS"); v != "" {
			binds = "binds = " + v + "\n"
		}
		cfg := fmt.Sprintf(`data_dir = %q
[log]
level = "info"
[ftp]
listen = "127.0.0.1:0"
passive_ports = "1024-65535"
[[ftp.users]]
name = %q
password_hash = %q
[web]
listen = "127.0.0.1:0"
[[web.users]]
name = %q
password_hash = %q
role = "admin"
[metrics]
listen = "127.0.0.1:0"
[smpp]
addr = %q
tps = 0
window = %d
%s`, filepath.Join(dir, "data"), testFTPUser, testPasswordHash(), testAdmin, testPasswordHash(), simAddr, window, binds)
		path := filepath.Join(dir, "c.toml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			b.Fatal(err)
		}
		p := startServe(b, bin, path)
		base := "http://" + p.web
		upload(b, p.ftp, "bench.csv", csv)
		var l apiList
		testenv.Eventually(b, 60*time.Second, "the broadcast", func() bool { apiGet(b, base, "/api/v1/broadcasts", &l); return l.Total == 1 })
		var perf *exec.Cmd
		if out := os.Getenv("SENDCPU_PERF"); out != "" { // a perf profile of campaignd while it sends
			perf = exec.Command("perf", "record", "-F", "997", "-g", "-o", fmt.Sprintf("%s.%d", out, i), "-p", strconv.Itoa(p.cmd.Process.Pid))
			if err := perf.Start(); err != nil {
				b.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		cpu0, t0 := procCPU(b, p.cmd.Process.Pid), time.Now()
		var bc apiBroadcast
		testenvPoll(b, 10*time.Minute, func() bool {
			apiGet(b, base, fmt.Sprintf("/api/v1/broadcasts/%d", l.Broadcasts[0].ID), &bc)
			return bc.Counts.Settled()+bc.Counts.Cancelled == int64(rows)
		})
		elapsed, cpu := time.Since(t0), procCPU(b, p.cmd.Process.Pid)-cpu0
		hwm := procHWM(b, p.cmd.Process.Pid)
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)); err == nil {
			for _, line := range strings.Split(string(st), "\n") {
				if strings.HasPrefix(line, "Rss") {
					b.Log(strings.Join(strings.Fields(line), " "))
				}
			}
		}
		if name := os.Getenv("SENDCPU_SMAPS"); name != "" { // where campaignd's resident memory is
			if sm, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", p.cmd.Process.Pid)); err == nil {
				os.WriteFile(fmt.Sprintf("%s.%d", name, i), sm, 0o644)
			}
		}
		if perf != nil {
			perf.Process.Signal(os.Interrupt)
			perf.Wait()
		}
		p.kill()
		if bc.Counts.Delivered != int64(rows) {
			b.Fatalf("counts %+v, want %d delivered", bc.Counts, rows)
		}
		b.ReportMetric(float64(cpu.Microseconds())/float64(rows), "µs-cpu/msg")
		b.ReportMetric(float64(rows)/cpu.Seconds(), "msg/cpu-s")
		b.ReportMetric(float64(rows)/elapsed.Seconds(), "msg/s")
		b.ReportMetric(float64(hwm)/(1<<20), "peak-MiB")
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func testenvPoll(tb testing.TB, d time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("not done after %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func buildBinary(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "campaignd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

var simLine = regexp.MustCompile(`listening on (\S+)`)

// startSimProc runs `campaignd smsc-sim` and returns its address; it is
// killed at the end of the benchmark.
func startSimProc(tb testing.TB, bin string) string {
	tb.Helper()
	cmd := exec.Command(bin, "smsc-sim", "--listen", "127.0.0.1:0", "--delivered-percent", "100", "--receipt-delay", "50ms")
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cmd.Process.Signal(syscall.SIGKILL); cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if m := simLine.FindStringSubmatch(sc.Text()); m != nil {
			go func() {
				for sc.Scan() {
				}
			}()
			return m[1]
		}
	}
	tb.Fatal("smsc-sim did not start")
	return ""
}

// startServe is startProc for any binary and testing.TB.
func startServe(tb testing.TB, bin, cfg string) *proc {
	tb.Helper()
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), "GOMEMLIMIT=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	tb.Cleanup(func() { p.kill() })
	ready := make(chan []string, 1)
	var tee *os.File // SENDCPU_STDERR: a copy of campaignd's stderr
	if name := os.Getenv("SENDCPU_STDERR"); name != "" {
		if tee, err = os.Create(name); err != nil {
			tb.Fatal(err)
		}
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				ready <- m
			}
			if tee != nil {
				fmt.Fprintln(tee, sc.Text())
			}
		}
		cmd.Wait()
		if tee != nil {
			tee.Close()
		}
		close(p.done)
	}()
	select {
	case m := <-ready:
		p.ftp, p.web, p.metr = m[1], m[2], m[3]
	case <-p.done:
		tb.Fatal("campaignd exited before it was ready")
	case <-time.After(30 * time.Second):
		tb.Fatal("campaignd not ready after 30 s")
	}
	return p
}

// procCPU is the process's utime + stime.
func procCPU(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// procHWM is the process's peak resident set in bytes.
func procHWM(tb testing.TB, pid int) int64 {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
