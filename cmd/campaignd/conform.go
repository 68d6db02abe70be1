package main

import (
	"campaignd/ftpd"
	"campaignd/pipeline/engine"
	"campaignd/pipeline/ingest"
	"campaignd/pipeline/replies"
	"campaignd/pipeline/report"
	"campaignd/pipeline/wheel"
	"campaignd/smpp"
	"campaignd/store"
)

// The adapters implement the small interfaces the pipeline packages declare,
// in the root's words; these lines check it at compile time, in the one
// package that knows them all.
var (
	_ wheel.TimerStore          = (*store.DB)(nil)
	_ engine.Store              = (*store.DB)(nil)
	_ engine.SuppressionChecker = (*store.DB)(nil)
	_ engine.Sender             = (*smpp.Client)(nil)
	_ smpp.Receiver             = (*engine.Engine)(nil)
	_ ingest.Store              = (*store.DB)(nil)
	_ ingest.SuppressionViewer  = (*store.DB)(nil)
	_ replies.Store             = (*store.DB)(nil)
	_ replies.Sender            = (*smpp.Client)(nil)
	_ report.Store              = (*store.DB)(nil)
	_ report.Pusher             = (*ftpd.Pusher)(nil)
)
