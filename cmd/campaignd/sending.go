package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"campaignd"
	"campaignd/ftpd"
	"campaignd/pipeline/engine"
	"campaignd/pipeline/report"
	"campaignd/pipeline/wheel"
	"campaignd/smpp"
)

// openSending starts the SMSC side (the bundled simulator when smpp.addr is
// empty), the durable timing wheel, the engine and the daily report.
func (m *Main) openSending() error { return m.openSendingCtx(m.ctx) }

// openSendingCtx is openSending for as long as ctx lasts (a leader's term,
// cluster.go).
func (m *Main) openSendingCtx(ctx context.Context) error {
	c := &m.Config
	addr, systemID, password := c.SMPP.Addr, c.SMPP.SystemID, c.SMPP.Password
	if addr == "" {
		m.Sim = smpp.NewSimulator(smpp.SimOptions{
			Listen: "127.0.0.1:0", DeliveredPercent: c.Simulator.DeliveredPercent,
			ReceiptDelay: time.Duration(c.Simulator.ReceiptDelay), Logger: m.Logger.With("system", "smsc-sim"),
		})
		if err := m.Sim.Open(); err != nil {
			return fmt.Errorf("smsc simulator: %w", err)
		}
		addr, systemID, password = m.Sim.Addr(), "campaignd", "demo"
	}

	m.Wheel = wheel.NewWheel(m.DB, wheel.Options{Now: m.Now, Logger: m.Logger.With("system", "wheel"), Events: m.Metrics})
	m.SMPP = smpp.New(smpp.Options{
		Addr: addr, SystemID: systemID, Password: password, SystemType: c.SMPP.SystemType, Bind: c.SMPP.Bind,
		TPS: c.SMPP.TPS, Window: c.SMPP.Window, Binds: c.SMPP.Binds, Validity: time.Duration(c.SMPP.Validity),
		ResponseTimeout: time.Duration(c.SMPP.ResponseTimeout), EnquireLink: time.Duration(c.SMPP.EnquireLink),
		SourceTON: byte(c.SMPP.SourceTON), SourceNPI: byte(c.SMPP.SourceNPI), DestTON: byte(c.SMPP.DestTON), DestNPI: byte(c.SMPP.DestNPI),
		OnMO:   m.onMO, // optout.go
		Events: m.Metrics, Logger: m.Logger.With("system", "smpp"),
	})
	m.Sender = m.SMPP
	m.openReplies()
	var err error
	m.Engine, err = engine.NewEngine(engine.Options{
		// As many submitters as the binds' windows hold, so every bind can be kept full.
		Store: m.DB, Sender: m.Sender, Wheel: m.Wheel, Window: c.SMPP.Window * c.SMPP.Binds, TPS: c.SMPP.TPS,
		MaxAttempts: c.SMPP.MaxAttempts, ResponseTimeout: time.Duration(c.SMPP.ResponseTimeout),
		ReceiptTimeout: time.Duration(c.Report.ReceiptTimeout), SendWindow: c.Sending.Window,
		Location: m.loc, Now: m.Now, Logger: m.Logger.With("system", "engine"), Events: m.Metrics,
		MessageIDFormat: c.SMPP.MessageIDFormat,
	})
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	// Receipts go to the engine's writer without holding up the reader; the
	// deliver_sm_resp follows once the receipt is committed. The client is
	// started below, after this, so nothing arrives before the engine exists.
	m.SMPP.ReceiveWith(m.Engine)

	var pusher report.Pusher // an untyped nil: local only
	if c.Report.FTPURL != "" {
		p, err := ftpd.NewPusher(ftpd.PushOptions{URL: c.Report.FTPURL, TLS: c.Report.TLS, Logger: m.Logger})
		if err != nil {
			return fmt.Errorf("report.ftp_url: %w", err)
		}
		pusher = p
	}
	m.Reporter, err = report.NewReporter(report.Options{
		Store: m.DB, Timers: m.Wheel, Dir: filepath.Join(c.DataDir, "reports"), FileName: c.Report.FileName,
		Location: m.loc, Time: c.Report.Time, Pusher: pusher, Now: m.Now,
		Logger: m.Logger, Events: m.Metrics,
	})
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}

	m.SMPP.Start(ctx)
	if err := m.Engine.Start(ctx); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	if err := m.Reporter.Start(ctx); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if reports, err := m.Reporter.Reports(ctx); err == nil {
		var last time.Time
		for _, r := range reports {
			if r.PushedAt.After(last) {
				last = r.PushedAt
			}
		}
		m.Metrics.LastReportPush(last)
	}
	if err := m.Wheel.Start(ctx); err != nil {
		return fmt.Errorf("timers: %w", err)
	}
	return nil
}

// closeSending stops submitting, lets submits in flight finish and their
// results be written, then unbinds.
func (m *Main) closeSending(ctx context.Context) error {
	var errs []error
	if m.Wheel != nil {
		m.Wheel.Close()
	}
	if m.Engine != nil {
		errs = append(errs, m.Engine.Close(ctx))
	}
	m.closeReplies()
	if m.SMPP != nil {
		errs = append(errs, m.SMPP.Close(ctx))
	}
	if m.Sim != nil {
		errs = append(errs, m.Sim.Close())
	}
	return errors.Join(errs...)
}

// admit hands a freshly ingested broadcast to the engine (send now or
// schedule). A failure here is repaired by the engine's start-up
// reconciliation, so it is only logged.
func (m *Main) admit(b *campaignd.Broadcast) {
	if m.cluster != nil {
		m.cluster.admit(b) // cluster.go
		return
	}
	if err := m.Engine.Admit(b); err != nil {
		m.Logger.Error("admitting broadcast failed", "broadcast_id", b.ID, slog.Any("error", err))
	}
}
