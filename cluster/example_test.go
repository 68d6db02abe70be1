package cluster_test

import (
	"context"
	"log/slog"
	"net/http"

	"campaignd/cluster"
)

// How cmd/campaignd wires the package when [store] engine = "postgres".
// Every node runs the same code; only the leader's lead function runs.
func Example() {
	ctx := context.Background()
	dsn := "postgres://campaignd@db/campaignd"
	log := slog.Default()
	setLeaderGauge := func(bool) {} // metrics.Leader(v): campaignd_leader 1 or 0

	e, err := cluster.NewElector(dsn, cluster.Options{
		Node: "node-a", Addr: "10.0.0.1:8080", Logger: log, OnChange: setLeaderGauge,
	})
	if err != nil {
		log.Error("cluster", slog.Any("error", err))
		return
	}
	n, err := cluster.NewNotifier(dsn, cluster.NotifierOptions{Node: "node-a", Logger: log})
	if err != nil {
		log.Error("cluster", slog.Any("error", err))
		return
	}
	defer n.Close()
	go n.Run(ctx)

	// The console, on any node: an operator's action is written to the
	// database, then the leader is woken (or cluster.Notify(ctx, tx, …)
	// inside the action's transaction).
	pause := func(w http.ResponseWriter, r *http.Request) {
		// … store.Pause(ctx, id) …
		_ = n.Notify(r.Context(), "campaignd_wake", "pause:42")
	}
	_ = pause
	// /readyz reports the role; the console shows e.Leader() and e.Nodes().
	readyz := func(w http.ResponseWriter, r *http.Request) {
		if e.IsLeader() {
			w.Write([]byte("ok leader\n"))
			return
		}
		w.Write([]byte("ok follower\n"))
	}
	_ = readyz

	// Only the leader binds SMPP and runs the engine, wheel and reporter.
	_ = e.Run(ctx, func(lead context.Context, epoch int64) {
		wake := n.Listen(lead, "campaignd_wake")
		// Open the SMPP binds, start the engine, the wheel and the
		// reporter with lead; writes may be fenced with
		// cluster.Fence(ctx, tx, epoch).
		for range wake {
			// "" (cluster.Rescan) or a payload: re-read what changed.
		}
		// wake is closed: lead is done. Stop sending and return within
		// Renew (2 s).
	})
}
