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
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("stats-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(sim.Stats())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(stdout, "stats stopped: %v\n", err)
		}
	}()
	fmt.Fprintf(stdout, "Stats: GET http://%s/stats\n", ln.Addr())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}
