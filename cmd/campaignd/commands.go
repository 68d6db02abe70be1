package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"campaignd"
	"campaignd/pipeline/ingest"
	"campaignd/smpp"
)

// checkFile validates a file offline with the same rules as ingest and
// prints the decision and every error. It exits non-zero for a rejected
// file, so scripts can use it.
func checkFile(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("campaignd check-file", flag.ContinueOnError)
	configPath := fs.String("config", os.Getenv("CAMPAIGND_CONFIG"), "configuration file (for ingest limits and timezone)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: campaignd check-file [--config FILE] [--json] FILE.csv")
	}
	c := DefaultConfig()
	if *configPath != "" {
		var err error
		if c, err = LoadConfig(*configPath); err != nil {
			return err
		}
	}
	if err := c.ApplyEnv(os.Getenv); err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return err
	}
	loc, _ := time.LoadLocation(c.Timezone)
	path := fs.Arg(0)
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	in := ingest.NewIngester(nil, ingestOptions(c, loc))
	res, err := in.Check(f, filepath.Base(path))
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		printCheck(stdout, res, loc, campaignd.RowErrorWords(c.Ingest.Language))
	}
	if res.Decision != "accepted" {
		return fmt.Errorf("%s: rejected", path)
	}
	return nil
}

// printCheck writes r for a person: errors in ingest.language, as in
// .errors.csv.
func printCheck(w io.Writer, r *ingest.CheckResult, loc *time.Location, words campaignd.Words) {
	fmt.Fprintf(w, "file:      %s (%d bytes, %s)\n", r.FileName, r.Size, r.Charset)
	fmt.Fprintf(w, "decision:  %s\n", r.Decision)
	if r.Decision == "accepted" {
		when := ""
		if !r.ScheduledAt.IsZero() {
			when = " at " + r.ScheduledAt.In(loc).Format("2006-01-02 15:04:05 MST")
		}
		fmt.Fprintf(w, "broadcast: %q from %s, would be %s%s\n", r.Name, r.Sender, r.Status, when)
		validity := r.Validity
		if validity == "" {
			validity = "smpp.validity (default)"
		}
		fmt.Fprintf(w, "validity:  %s\n", validity)
	}
	fmt.Fprintf(w, "rows:      %d (%d valid, %d invalid, %d duplicate), %d segments in all\n", r.Rows, r.Valid, r.Invalid, r.Duplicate, r.Segments)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note:      %s\n", n)
	}
	for _, n := range r.Warnings {
		fmt.Fprintf(w, "warning:   %s\n", n)
	}
	if len(r.Errors) > 0 {
		fmt.Fprintln(w, "errors (line, column, value, error):")
		for _, e := range r.Errors {
			fmt.Fprintf(w, "  %d\t%s\t%q\t%s\n", e.Line, e.Column, e.Value, campaignd.ExplainRowError(words, e))
		}
	}
}

// smscSim runs the bundled SMSC simulator on its own until interrupted.
func smscSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("campaignd smsc-sim", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:2775", "address to listen on")
	delivered := fs.Int("delivered-percent", 95, "share of receipts that say DELIVRD (the rest UNDELIV)")
	delay := fs.Duration("receipt-delay", 2*time.Second, "delay before each delivery receipt")
	idScheme := fs.String("id-scheme", smpp.SimIDDecimal, "message ids: "+strings.Join(smpp.SimIDSchemes, ", "))
	idStart := fs.Uint64("id-start", 1, "first message id of the counter")
	batch := fs.Int("receipt-batch", 0, "hold receipts until this many wait (or none came for 1s), then send them in random order; 0 = off")
	byDest := fs.Bool("stat-by-dest", false, "receipt status from the destination's last digit (7 UNDELIV, 8 EXPIRED, 9 REJECTD, else DELIVRD), so a misfiled receipt shows")
	moListen := fs.String("mo-listen", "", "serve the reply hook (POST /mo) on this address, e.g. 127.0.0.1:2776; see optout_sim.go")
	statsListen := fs.String("stats-listen", "", "serve GET /stats (the counters and the submits per destination, as JSON) on this address, e.g. 127.0.0.1:2777")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !smpp.ValidSimIDScheme(*idScheme) {
		return fmt.Errorf("smsc-sim: --id-scheme %q: want one of %s", *idScheme, strings.Join(smpp.SimIDSchemes, ", "))
	}
	o := smpp.SimOptions{
		Listen: *listen, DeliveredPercent: *delivered, ReceiptDelay: *delay,
		IDScheme: *idScheme, IDStart: *idStart, ReceiptBatch: *batch, TrackDests: *statsListen != "",
		Logger: slog.New(slog.NewTextHandler(stderr, nil)).With("system", "smsc-sim"),
	}
	if *byDest {
		o.Decide = smpp.StatByDest
	}
	sim := smpp.NewSimulator(o)
	if err := sim.Open(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "SMSC simulator listening on %s (any system_id/password)\n", sim.Addr())
	if *moListen != "" {
		stop, err := serveSimMO(sim, *moListen, stdout)
		if err != nil {
			sim.Close()
			return err
		}
		defer stop()
	}
	if *statsListen != "" {
		stop, err := serveSimStats(sim, *statsListen, stdout)
		if err != nil {
			sim.Close()
			return err
		}
		defer stop()
	}
	<-ctx.Done()
	return sim.Close()
}
