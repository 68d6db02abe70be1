package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"campaignd"
	"campaignd/pipeline/ingest"
	"campaignd/pipeline/replies"
	"campaignd/smpp"
	"campaignd/webui"
)

// OptoutConfig is [optout] (SPEC §11).
type OptoutConfig struct {
	Keywords    []string `toml:"keywords"`
	ConfirmText string   `toml:"confirm_text"`
}

func (c *OptoutConfig) validate() error {
	for _, k := range c.Keywords {
		if replies.MatchKeyword(k, []string{k}) == "" {
			return fmt.Errorf("config: optout.keywords: %q has no letter or digit", k)
		}
	}
	if c.ConfirmText != "" {
		if _, _, parts := smpp.Segments(c.ConfirmText); parts > 1 {
			return fmt.Errorf("config: optout.confirm_text: %d segments; keep it to one SMS (160 GSM-7 or 70 UCS-2 characters)", parts)
		}
	}
	return nil
}

// openReplies makes the handler of mobile-originated replies; the SMPP
// client hands it every MO (openSending).
func (m *Main) openReplies() {
	c := &m.Config
	m.Replies = replies.NewReplies(replies.Options{
		Store: m.DB, Keywords: c.Optout.Keywords, ConfirmText: c.Optout.ConfirmText,
		ConfirmSource: c.Ingest.DefaultSender, Sender: m.Sender, Countries: c.Ingest.AllowedCountries,
		Now: m.Now, Logger: m.Logger, Events: m.Metrics,
	})
	m.Metrics.SuppressionListSize(func() int {
		n, _ := m.DB.SuppressionCount()
		return n
	})
}

// onMO is the SMPP client's OnMO: the reply is kept (and applied) before
// the client acknowledges it.
func (m *Main) onMO(mo smpp.MO) error {
	if m.Replies == nil {
		return errors.New("replies not ready")
	}
	_, err := m.Replies.Handle(replies.Incoming{From: mo.From, To: mo.To, Text: mo.Text})
	return err
}

func (m *Main) closeReplies() {
	if m.Replies != nil {
		m.Replies.Close()
	}
}

// The console's and the API's suppression list (webui.SuppressionBackend).

var _ webui.SuppressionBackend = (*backend)(nil)

func (b *backend) rules() *ingest.NumberRules {
	return ingest.NewNumberRules(b.m.Config.Ingest.AllowedCountries)
}

func (b *backend) NormalizeNumber(raw string) (string, error) { return b.rules().Normalize(raw) }

func (b *backend) Suppressions(_ context.Context, prefix, after string, limit int) ([]campaignd.Suppression, string, int, error) {
	page, next, err := b.m.DB.Suppressions(prefix, after, limit)
	if err != nil {
		return nil, "", 0, err
	}
	n, err := b.m.DB.SuppressionCount()
	return page, next, n, err
}

func (b *backend) Suppression(_ context.Context, number string) (*campaignd.Suppression, error) {
	return b.m.DB.Suppressed(number)
}

func (b *backend) Suppress(_ context.Context, ss []campaignd.Suppression, a campaignd.AuditEntry) (int, error) {
	added, err := b.m.DB.SuppressMany(ss)
	if err != nil {
		return added, err
	}
	if len(ss) > 0 {
		b.m.Metrics.SuppressionChanged("added", ss[0].Reason, added)
	}
	if len(ss) > 0 {
		if err := b.m.DB.Audit(a); err != nil {
			return added, err
		}
	}
	return added, nil
}

func (b *backend) Unsuppress(_ context.Context, number string, a campaignd.AuditEntry) (*campaignd.Suppression, error) {
	old, err := b.m.DB.Unsuppress(number)
	if err != nil {
		return nil, err
	}
	if old == nil {
		return nil, campaignd.Errorf(campaignd.ENOTFOUND, "%s is not on the suppression list.", number)
	}
	b.m.Metrics.SuppressionChanged("removed", old.Reason, 1)
	return old, b.m.DB.Audit(a)
}

func (b *backend) MOs(_ context.Context, before uint64, limit int) ([]campaignd.MO, uint64, error) {
	return b.m.DB.MOs(before, limit)
}

func (b *backend) SuppressionAudit(_ context.Context, limit int) ([]campaignd.AuditEntry, error) {
	return b.m.DB.RecentAudit(0, limit)
}

func (b *backend) ImportSuppressions(ctx context.Context, r io.Reader, entry campaignd.Suppression, a campaignd.AuditEntry) (*webui.SuppressImport, error) {
	res, bad, err := ingest.ImportList(ctx, r, b.m.Config.Ingest.AllowedCountries, b.m.DB, entry)
	if res.Added > 0 {
		b.m.Metrics.SuppressionChanged("added", entry.Reason, res.Added)
	}
	if res.Valid > 0 {
		// Numbers already added stay added (and audited) even if the rest
		// of the list failed.
		a.Detail = fmt.Sprintf("%s: %d numbers added, %d already listed, %d invalid lines", a.Detail, res.Added, res.Valid-res.Added, res.Invalid)
		if aerr := b.m.DB.Audit(a); aerr != nil && err == nil {
			err = aerr
		}
	}
	if err != nil {
		return nil, err
	}
	return &webui.SuppressImport{Added: res.Added, Valid: res.Valid, Invalid: res.Invalid, Errors: bad}, nil
}
