// Command settle-watch measures one campaignd sending run from outside: it
// polls campaignd's metrics until a broadcast is visible, then until n
// messages have settled, and reads the CPU time (utime+stime) and peak RSS
// (VmHWM) of campaignd and of the SMSC simulator from /proc at both moments.
// With -pg-pid (the postmaster of a local PostgreSQL that campaignd stores
// in) it also reads the CPU time of every PostgreSQL process over the same
// window (see pgTicks).
// It then checks through the API that every message settled delivered, and
// prints one RESULT line of key=value figures for bench/sending.sh.
//
// Polling uses the unauthenticated metrics endpoint, not the API: every API
// request checks a bcrypt password, which would cost campaignd more CPU
// than the sending being measured.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clkTck is USER_HZ, the unit of utime and stime in /proc/PID/stat; it is
// 100 on every Linux architecture Go supports.
const clkTck = 100

func main() {
	metrics := flag.String("metrics", "", "campaignd metrics URL, http://127.0.0.1:PORT/metrics")
	api := flag.String("api", "", "campaignd API base, http://127.0.0.1:PORT/api/v1")
	user := flag.String("user", "admin", "API user (HTTP Basic)")
	pass := flag.String("pass", "", "API password")
	n := flag.Int64("n", 0, "messages in the broadcast")
	pid := flag.Int("pid", 0, "campaignd's process id")
	simPID := flag.Int("sim-pid", 0, "the simulator's process id")
	pgPID := flag.Int("pg-pid", 0, "the postmaster's process id, when campaignd stores in a local PostgreSQL")
	system := flag.String("system", "campaignd", "the system label of the RESULT line")
	load := flag.String("load", "", "the load average before the run, copied to the RESULT line")
	interval := flag.Duration("interval", 20*time.Millisecond, "metrics polling interval")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	flag.Parse()
	if *metrics == "" || *api == "" || *n <= 0 || *pid <= 0 || *simPID <= 0 {
		fmt.Fprintln(os.Stderr, "settle-watch: -metrics, -api, -n, -pid and -sim-pid are required")
		os.Exit(2)
	}
	w := watch{system: *system, load: *load, pgPID: *pgPID}
	if err := w.run(*metrics, *api, *user, *pass, *n, *pid, *simPID, *interval, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "settle-watch:", err)
		os.Exit(1)
	}
}

// watch holds what the RESULT line carries beside the measurements.
type watch struct {
	system, load string
	pgPID        int
}

func (w watch) run(metricsURL, api, user, pass string, n int64, pid, simPID int, interval, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 10 * time.Second}
	poll := func(what string, done func(m map[string]float64) bool) error {
		for {
			m, err := scrape(client, metricsURL)
			if err == nil && done(m) {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("timed out after %s waiting for %s (last error: %v, settled %v)",
					timeout, what, err, m["campaignd_messages_settled_total"])
			}
			time.Sleep(interval)
		}
	}

	if err := poll("the broadcast to be visible", func(m map[string]float64) bool { return m["campaignd_broadcasts"] >= 1 }); err != nil {
		return err
	}
	t0 := time.Now()
	cpu0, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	sim0, err := cpuTicks(simPID)
	if err != nil {
		return err
	}
	var pg0 int64
	if w.pgPID > 0 {
		if pg0, err = pgTicks(w.pgPID); err != nil {
			return err
		}
	}
	// VmHWM so far is the peak of start-up, upload and ingest; reset it
	// (clear_refs 5) so that the value at the end is the peak while sending.
	hwmIngest, err := vmHWM(pid)
	if err != nil {
		return err
	}
	resetHWM := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil

	if err := poll(fmt.Sprintf("%d settled messages", n), func(m map[string]float64) bool {
		return m["campaignd_messages_settled_total"] >= float64(n)
	}); err != nil {
		return err
	}
	t1 := time.Now()
	cpu1, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	sim1, err := cpuTicks(simPID)
	if err != nil {
		return err
	}
	pgFields := ""
	if w.pgPID > 0 {
		pg1, err := pgTicks(w.pgPID)
		if err != nil {
			return err
		}
		pgCPU := float64(pg1-pg0) / clkTck
		pgFields = fmt.Sprintf(" pg_cpu_s=%.2f pg_us_per_msg=%.1f", pgCPU, 1e6*pgCPU/float64(n))
	}
	hwmSend, err := vmHWM(pid)
	if err != nil {
		return err
	}

	check := checkAPI(client, api, user, pass, n, deadline)

	wall := t1.Sub(t0).Seconds()
	cpu := float64(cpu1-cpu0) / clkTck
	hwm := max(hwmIngest, hwmSend)
	sendHWM := "-"
	if resetHWM {
		sendHWM = mib(hwmSend)
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	if w.load != "" {
		pgFields += " load=" + w.load
	}
	fmt.Printf("RESULT system=%s n=%d wall_s=%.3f msg_s=%.0f cpu_s=%.2f msg_per_cpu_s=%.0f us_per_msg=%.1f "+
		"hwm_mib=%s send_hwm_mib=%s sim_cpu_s=%.2f watch_cpu_s=%.2f%s check=%s\n",
		w.system, n, wall, float64(n)/wall, cpu, perCPU(n, cpu), 1e6*cpu/float64(n),
		mib(hwm), sendHWM, float64(sim1-sim0)/clkTck, rusageSeconds(ru), pgFields, check)
	if check != "ok" {
		return errors.New("API check failed: " + check)
	}
	return nil
}

// checkAPI asks the API, once the run is timed, whether the broadcast
// completed with every message delivered (the simulator delivers 100 %).
func checkAPI(client *http.Client, api, user, pass string, n int64, deadline time.Time) string {
	var last string
	for {
		req, err := http.NewRequest(http.MethodGet, api+"/broadcasts", nil)
		if err != nil {
			return "bad_api_url"
		}
		req.SetBasicAuth(user, pass)
		var body struct {
			Broadcasts []struct {
				Status string `json:"status"`
				Counts struct {
					Total, Delivered, Failed, Unknown, Submitted, Queued int64
				} `json:"counts"`
			} `json:"broadcasts"`
		}
		resp, err := client.Do(req)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
		}
		switch {
		case err != nil:
			last = "api_error"
		case len(body.Broadcasts) != 1:
			last = fmt.Sprintf("broadcasts=%d", len(body.Broadcasts))
		default:
			b := body.Broadcasts[0]
			c := b.Counts
			if b.Status == "completed" && c.Total == n && c.Delivered == n {
				return "ok"
			}
			last = fmt.Sprintf("status=%s,total=%d,delivered=%d,failed=%d,unknown=%d,submitted=%d,queued=%d",
				b.Status, c.Total, c.Delivered, c.Failed, c.Unknown, c.Submitted, c.Queued)
		}
		if time.Now().After(deadline) {
			return last
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// scrape reads a Prometheus text page and sums each metric over its labels.
func scrape(client *http.Client, url string) (map[string]float64, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("metrics: %s", resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		name := line[:sp]
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		m[name] += v
	}
	return m, sc.Err()
}

// cpuTicks returns utime+stime of process pid (all its threads) in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)  // field 14, utime
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15, stime
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return u + st, nil
}

// pgTicks returns the CPU time, in clock ticks, of every PostgreSQL process
// under the postmaster pid: its own utime+stime, cutime+cstime (the
// children it has reaped: backends that ended), and utime+stime of each live
// child (backends, checkpointer, WAL writer, background writer, ...).
func pgTicks(pid int) (int64, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		total += v
	}
	kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0, err
	}
	for _, k := range strings.Fields(string(kids)) {
		c, err := strconv.Atoi(k)
		if err != nil {
			continue
		}
		t, err := cpuTicks(c)
		if err != nil {
			continue // it ended in between: its time is now in cutime/cstime
		}
		total += t
	}
	return total, nil
}

func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	s := string(b)
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 15 {
		return nil, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	return f, nil
}

// vmHWM returns the peak resident set size of pid in KiB.
func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
}

func mib(kib int64) string { return fmt.Sprintf("%.0f", float64(kib)/1024) }

func perCPU(n int64, cpu float64) float64 {
	if cpu <= 0 {
		return 0
	}
	return float64(n) / cpu
}

func rusageSeconds(ru syscall.Rusage) float64 {
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
