package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"campaignd/smpp"
)

// serveSimStats serves GET /stats for tests that run the simulator as its
// own process (the failover test counts duplicates with it): the
// simulator's counters as JSON (smpp.SimStats, PerDest included: the
// submit_sm received per destination). It listens until stop is called;
// keep it on loopback.
func serveSimStats(sim *smpp.Simulator, addr string, stdout io.Writer) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(sim.Stats())
	})
	ln, stop, err := serveSimHTTP(addr, "stats", mux, stdout)
	if err != nil {
		return nil, fmt.Errorf("stats-listen: %w", err)
	}
	fmt.Fprintf(stdout, "Stats: GET http://%s/stats\n", ln)
	return stop, nil
}

// serveSimHTTP serves one of the simulator's HTTP hooks (what names it in
// errors) on addr until stop is called, and returns its bound address.
func serveSimHTTP(addr, what string, h http.Handler, stdout io.Writer) (net.Addr, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(stdout, "%s stopped: %v\n", what, err)
		}
	}()
	return ln.Addr(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}
