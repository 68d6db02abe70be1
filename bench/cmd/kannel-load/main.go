// Command kannel-load is the load client of the Kannel benchmark
// (bench/kannel.sh): it sends -n messages through Kannel's sendsms HTTP
// interface from -workers concurrent keep-alive connections, each asking for
// delivery reports (dlr-mask 31) to -dlr-url?id=I&type=%d, and prints a LOAD
// line of key=value figures: accepted and failed requests, when the first
// request started and the last one was answered, and its own CPU time.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	target := flag.String("url", "", "sendsms URL, http://127.0.0.1:PORT/cgi-bin/sendsms")
	user := flag.String("user", "bench", "sendsms-user username")
	pass := flag.String("pass", "bench", "sendsms-user password")
	from := flag.String("from", "28776", "sender")
	dlr := flag.String("dlr-url", "", "delivery-report receiver, http://127.0.0.1:PORT/dlr")
	n := flag.Int("n", 0, "messages to send")
	workers := flag.Int("workers", 64, "concurrent keep-alive connections")
	flag.Parse()
	if *target == "" || *dlr == "" || *n <= 0 || *workers <= 0 {
		fmt.Fprintln(os.Stderr, "kannel-load: -url, -dlr-url and -n are required")
		os.Exit(2)
	}
	tr := &http.Transport{MaxIdleConns: *workers, MaxIdleConnsPerHost: *workers, MaxConnsPerHost: *workers,
		IdleConnTimeout: time.Minute, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}

	var next atomic.Int64
	var ok, failed atomic.Int64
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= *n {
					return
				}
				q := url.Values{}
				q.Set("username", *user)
				q.Set("password", *pass)
				q.Set("from", *from)
				q.Set("to", fmt.Sprintf("5255%08d", i))
				q.Set("text", fmt.Sprintf("Hola socio %d tienes 1250 puntos Payback canjealos antes del domingo", i))
				q.Set("dlr-mask", "31")
				q.Set("dlr-url", fmt.Sprintf("%s?id=%d&type=%%d", *dlr, i))
				resp, err := client.Get(*target + "?" + q.Encode())
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode/100 != 2 {
						err = fmt.Errorf("%s: %q", resp.Status, body)
					}
				}
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { fmt.Fprintf(os.Stderr, "kannel-load: message %d: %v\n", i, err) })
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	end := time.Now()
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
	fmt.Printf("LOAD ok=%d failed=%d first_ns=%d last_ns=%d req_s=%.0f load_cpu_s=%.2f\n",
		ok.Load(), failed.Load(), start.UnixNano(), end.UnixNano(),
		float64(*n)/end.Sub(start).Seconds(), cpu)
	if failed.Load() > 0 {
		os.Exit(1)
	}
}
