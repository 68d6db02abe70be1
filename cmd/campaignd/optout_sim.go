package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"campaignd/smpp"
)

// serveSimMO serves the simulator's reply hook for tests and demos: POST
// /mo with {"from": "...", "to": "...", "text": "...", "data_coding": 0|8,
// "payload": false} makes the simulator deliver that MO, as if a handset
// had answered. It listens until stop is called; keep it on loopback.
func serveSimMO(sim *smpp.Simulator, addr string, stdout io.Writer) (func(), error) {
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
	ln, stop, err := serveSimHTTP(addr, "mo hook", mux, stdout)
	if err != nil {
		return nil, fmt.Errorf("mo-listen: %w", err)
	}
	fmt.Fprintf(stdout, "Reply hook: POST http://%s/mo {\"from\":\"525512345678\",\"to\":\"28776\",\"text\":\"BAJA\",\"data_coding\":0}\n", ln)
	return stop, nil
}
