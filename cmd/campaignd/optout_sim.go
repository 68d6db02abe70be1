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

// serveSimMO serves the simulator's reply hook for tests and demos: POST
// /mo with {"from": "...", "to": "...", "text": "...", "data_coding": 0|8,
// "payload": false} makes the simulator deliver that MO, as if a handset
// had answered. It listens until ctx ends; keep it on loopback.
func serveSimMO(ctx context.Context, sim *smpp.Simulator, addr string, stdout io.Writer) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mo-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mo", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			From       string `json:"from"`
			To         string `json:"to"`
			Text       string `json:"text"`
			DataCoding byte   `json:"data_coding"`
			Payload    bool   `json:"payload"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil || req.From == "" {
			http.Error(w, `send {"from": "525512345678", "to": "28776", "text": "BAJA", "data_coding": 0}`, http.StatusBadRequest)
			return
		}
		if req.DataCoding != 0 && req.DataCoding != 8 {
			http.Error(w, "data_coding must be 0 (GSM-7) or 8 (UCS-2)", http.StatusBadRequest)
			return
		}
		if err := sim.SendMO(smpp.SimMO{From: req.From, To: req.To, Text: req.Text, DataCoding: req.DataCoding, Payload: req.Payload}); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(stdout, "mo hook stopped: %v\n", err)
		}
	}()
	fmt.Fprintf(stdout, "Reply hook: POST http://%s/mo {\"from\":\"525512345678\",\"to\":\"28776\",\"text\":\"BAJA\",\"data_coding\":0}\n", ln.Addr())
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}, nil
}
