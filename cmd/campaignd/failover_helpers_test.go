package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"campaignd/smpp"
)

// Helpers of the failover test (failover_e2e_test.go): the real binary as
// separate processes, each stopped by its PID at the end of the test, with
// its log kept in a file and shown when the test fails.

// buildCampaignd builds the binary into the test's temporary directory.
func buildCampaignd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "campaignd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startLogged starts cmd with its stderr (and stdout) copied to logPath;
// line is called for every line of stdout and stderr. The process is killed
// (SIGKILL, then waited for) at the end of the test, and its log's tail is
// shown when the test failed.
func startLogged(t *testing.T, name string, cmd *exec.Cmd, logPath string, line func(string)) *proc {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			showTail(t, name, logPath, 60)
		}
	})
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			line(sc.Text())
		}
		io.Copy(io.Discard, pr)
	}()
	go func() {
		cmd.Wait()
		pw.Close()
		<-scanned
		logf.Close()
		close(p.done)
	}()
	return p
}

// logDir is where the processes' logs go: CAMPAIGND_TEST_LOGS when set (to
// read them after the test), else a temporary directory.
func logDir(t *testing.T) string {
	if d := os.Getenv("CAMPAIGND_TEST_LOGS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func showTail(t *testing.T, name, path string, n int) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	t.Logf("--- last %d lines of %s's log (%s):\n%s", len(lines), name, path, strings.Join(lines, "\n"))
}

// simProc is `campaignd smsc-sim --stats-listen` as its own process.
type simProc struct {
	*proc
	addr, stats string
}

var simStatsLine = regexp.MustCompile(`GET (http://\S+/stats)`)

func startSimProcess(t *testing.T, bin string, args ...string) *simProc {
	t.Helper()
	args = append([]string{"smsc-sim", "--listen", "127.0.0.1:0", "--stats-listen", "127.0.0.1:0"}, args...)
	found := make(chan [2]string, 1)
	var addr string
	p := startLogged(t, "smsc-sim", exec.Command(bin, args...), filepath.Join(logDir(t), "smsc-sim.log"), func(l string) {
		if m := simLine.FindStringSubmatch(l); m != nil {
			addr = m[1]
		}
		if m := simStatsLine.FindStringSubmatch(l); m != nil {
			found <- [2]string{addr, m[1]}
		}
	})
	select {
	case a := <-found:
		return &simProc{proc: p, addr: a[0], stats: a[1]}
	case <-p.done:
		t.Fatal("smsc-sim exited before it listened")
	case <-time.After(30 * time.Second):
		t.Fatal("smsc-sim not listening after 30 s")
	}
	return nil
}

// Stats reads the simulator's counters.
func (s *simProc) Stats(t *testing.T) smpp.SimStats {
	t.Helper()
	var st smpp.SimStats
	resp, err := httpClient.Get(s.stats)
	if err != nil {
		t.Fatalf("simulator stats: %v", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("simulator stats: %v", err)
	}
	return st
}

// duplicates is the number of submits beyond the first per destination.
func duplicates(st smpp.SimStats) int {
	n := 0
	for _, c := range st.PerDest {
		n += c - 1
	}
	return n
}

// duplicatedRanges lists the destinations submitted more than once, as
// ranges of consecutive numbers ("525500000340-525500000361×2"), to tell a
// burst at the failover from duplicates spread over the whole run.
func duplicatedRanges(st smpp.SimStats) string {
	type dup struct {
		n     int64
		times int
	}
	var ds []dup
	for d, c := range st.PerDest {
		if c > 1 {
			n, _ := strconv.ParseInt(d, 10, 64)
			ds = append(ds, dup{n, c})
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].n < ds[j].n })
	var out []string
	for i := 0; i < len(ds); {
		j := i
		for j+1 < len(ds) && ds[j+1].n == ds[j].n+1 {
			j++
		}
		r := strconv.FormatInt(ds[i].n, 10)
		if j > i {
			r += "-" + strconv.FormatInt(ds[j].n, 10)
		}
		out = append(out, fmt.Sprintf("%s (%d)", r, j-i+1))
		i = j + 1
	}
	return strings.Join(out, ", ")
}

// httpClient bounds every request of the failover test: a node that hangs
// must fail the test, not stall it.
var httpClient = &http.Client{Timeout: 10 * time.Second}

// node is `campaignd serve --config` as its own process.
type node struct {
	name, cfg, logPath string
	*proc
	killed bool
}

func (n *node) base() string { return "http://" + n.web }

func startNode(t *testing.T, bin, name, cfg string) *node {
	t.Helper()
	n := &node{name: name, cfg: cfg, logPath: filepath.Join(logDir(t), "node-"+name+".log")}
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), "GOMEMLIMIT=")
	ready := make(chan []string, 1)
	n.proc = startLogged(t, "node "+name, cmd, n.logPath, func(l string) {
		if m := readyLine.FindStringSubmatch(l); m != nil {
			select {
			case ready <- m:
			default:
			}
		}
	})
	select {
	case m := <-ready:
		n.ftp, n.web, n.metr = m[1], m[2], m[3]
	case <-n.done:
		t.Fatalf("node %s exited before it was ready", name)
	case <-time.After(60 * time.Second):
		t.Fatalf("node %s not ready after 60 s", name)
	}
	return n
}

// ready is GET /readyz: its status code and detail (code 0 when the node
// does not answer).
func (n *node) ready() (int, map[string]string) {
	resp, err := httpClient.Get(n.base() + "/readyz")
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var r struct {
		Detail map[string]string `json:"detail"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, r.Detail
}

// leaderMetric is the node's campaignd_leader gauge: "1", "0" or "" when
// it cannot be read.
func (n *node) leaderMetric() string {
	resp, err := httpClient.Get("http://" + n.metr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "campaignd_leader "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// view is what the live nodes say about the cluster.
type view struct {
	leaders []string // the nodes whose /readyz says role=leader
	named   []string // the leader each live node names, in order
	codes   []int    // each live node's /readyz status
}

func look(nodes []*node) view {
	var v view
	for _, n := range nodes {
		code, d := n.ready()
		v.codes = append(v.codes, code)
		v.named = append(v.named, d["leader"])
		if d["role"] == "leader" {
			v.leaders = append(v.leaders, n.name)
		}
	}
	return v
}

// settledOn: exactly one node leads, every live node is ready (200) and
// names it.
func (v view) settledOn() (string, bool) {
	if len(v.leaders) != 1 {
		return "", false
	}
	for i := range v.named {
		if v.codes[i] != 200 || v.named[i] != v.leaders[0] {
			return "", false
		}
	}
	return v.leaders[0], true
}

func (v view) String() string {
	return fmt.Sprintf("leaders %v, named %v, /readyz %v", v.leaders, v.named, v.codes)
}

// waitFor polls cond every 50 ms until it holds, failing the test after d.
// (testenv.Eventually polls every 2 ms; these conditions are HTTP requests
// to several processes on a loaded machine.)
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// broadcastByFile finds the broadcast made from file name through a node's
// API; ok is false until it exists.
func broadcastByFile(t *testing.T, base, name string) (apiBroadcast, bool) {
	t.Helper()
	var l apiList
	if apiGetQuiet(base, "/api/v1/broadcasts", &l) != 200 {
		return apiBroadcast{}, false
	}
	for _, b := range l.Broadcasts {
		if b.FileName == name {
			return b, true
		}
	}
	return apiBroadcast{}, false
}

// apiGetQuiet is apiGet that reports a node that does not answer as code 0
// instead of failing (nodes die and databases restart in this test).
func apiGetQuiet(base, path string, v any) int {
	req, _ := http.NewRequest("GET", base+path, nil)
	req.SetBasicAuth(testAdmin, testPass)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode == 200 && v != nil {
		if json.NewDecoder(resp.Body).Decode(v) != nil {
			return 0
		}
	}
	return resp.StatusCode
}

// console is a logged-in session on one node's console.
type console struct {
	base   string
	client *http.Client
}

func loginConsole(t *testing.T, base string) *console {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &console{base: base, client: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	resp, err := c.client.PostForm(base+"/login", url.Values{"username": {testAdmin}, "password": {testPass}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("console login on %s: %d", base, resp.StatusCode)
	}
	return c
}

func (c *console) page(t *testing.T, path string) string {
	t.Helper()
	resp, err := c.client.Get(c.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || strings.Contains(resp.Request.URL.Path, "/login") {
		t.Fatalf("GET %s%s: %d (at %s)", c.base, path, resp.StatusCode, resp.Request.URL)
	}
	return string(b)
}

var (
	progressBar = regexp.MustCompile(`<progress id="bar" max="(\d+)" value="(\d+)">`)
	sendingNode = regexp.MustCompile(`id="cluster-node"[^>]*>([^<]*)<`)
)

// numberedCSV is csvFile with the recipients numbered from first, so that
// every file of a test has its own recipients.
func numberedCSV(date string, first, n int) string {
	var b strings.Builder
	b.WriteString("Recipient,Message,Payback Member ID,Campaign Name,Date\n")
	for i := first; i < first+n; i++ {
		fmt.Fprintf(&b, "55%08d,\"Hola socio %d, tienes puntos\",600%07d,Prueba,%s\n", i, i, i, date)
	}
	return b.String()
}
