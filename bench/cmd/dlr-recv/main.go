// Command dlr-recv is the delivery-report receiver of the Kannel benchmark
// (bench/kannel.sh). Kannel's smsbox calls its dlr-url for every report:
// GET /dlr?id=MESSAGE&type=%d. It counts final reports (types 1 delivered,
// 2 failed, 16 rejected by the SMSC) once per message id and exits when
// -n messages have one, printing a DLR line of key=value figures: when the
// first report and the last final one came, counts by type, duplicates, and
// its own CPU time.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type counter struct {
	mu        sync.Mutex
	n         int
	final     []bool
	finals    int
	dups      int
	bad       int
	byType    map[int]int
	first     time.Time
	lastFinal time.Time
	done      chan struct{}
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id, err1 := strconv.Atoi(q.Get("id"))
	typ, err2 := strconv.Atoi(q.Get("type"))
	now := time.Now()
	c.mu.Lock()
	if c.first.IsZero() {
		c.first = now
	}
	switch {
	case err1 != nil || err2 != nil || id < 0 || id >= c.n:
		c.bad++
	default:
		c.byType[typ]++
		if typ == 1 || typ == 2 || typ == 16 {
			if c.final[id] {
				c.dups++
			} else {
				c.final[id] = true
				c.finals++
				c.lastFinal = now
				if c.finals == c.n {
					close(c.done)
				}
			}
		}
	}
	c.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	addrFile := flag.String("addr-file", "", "write the bound address to this file once listening")
	n := flag.Int("n", 0, "messages expected (ids 0..n-1)")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	flag.Parse()
	if *n <= 0 {
		fmt.Fprintln(os.Stderr, "dlr-recv: -n is required")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dlr-recv:", err)
		os.Exit(1)
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(ln.Addr().String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "dlr-recv:", err)
			os.Exit(1)
		}
	}
	c := &counter{n: *n, final: make([]bool, *n), byType: map[int]int{}, done: make(chan struct{})}
	srv := &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()

	ok := true
	select {
	case <-c.done:
	case <-time.After(*timeout):
		ok = false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = srv.Shutdown(ctx)
	cancel()

	c.mu.Lock()
	defer c.mu.Unlock()
	types := make([]int, 0, len(c.byType))
	for t := range c.byType {
		types = append(types, t)
	}
	sort.Ints(types)
	var bt []string
	for _, t := range types {
		bt = append(bt, fmt.Sprintf("%d:%d", t, c.byType[t]))
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
	fmt.Printf("DLR finals=%d dup_finals=%d bad=%d by_type=%s first_ns=%d last_final_ns=%d recv_cpu_s=%.2f\n",
		c.finals, c.dups, c.bad, strings.Join(bt, ","), unixNano(c.first), unixNano(c.lastFinal), cpu)
	if !ok {
		fmt.Fprintf(os.Stderr, "dlr-recv: timed out after %s with %d of %d final reports\n", *timeout, c.finals, c.n)
		os.Exit(1)
	}
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
