// Package engine sends broadcasts: per-message state, the shared rate, the
// SMPP window, the send window, retries, pause/resume/cancel, delivery
// receipts and their timeouts, and the opt-out check before each submit.
// Every state change goes through one writer goroutine that batches them
// into the store (Store.SaveChanges); timers (scheduled starts, retries,
// receipt sweeps) live in a pipeline/wheel Wheel. It declares what it needs
// from the store (Store) and from SMPP (Sender); the SMPP client hands it
// receipts through QueueReceipt. Start reading at Engine and NewEngine
// (engine.go), then submit (engine.go), Act (engine_act.go) and the writer
// (receipt.go).
//
// Concurrency is read in one place, effects.go: the submitters, the writer
// (and its acknowledgements of receipts), and a fixed pair of workers that
// run every side effect decided under the engine's lock, in order. Every
// wait uses the injected clock (Options.Now and After), so tests step a
// fake clock.
package engine
