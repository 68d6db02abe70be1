package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"campaignd"
	"campaignd/webui"
)

func (m *Main) openWeb() error {
	c := &m.Config.Web
	users := make([]webui.User, len(c.Users))
	for i, u := range c.Users {
		users[i] = webui.User{Name: u.Name, PasswordHash: u.PasswordHash, Role: campaignd.Role(u.Role)}
	}
	var tlsConfig *tls.Config
	if c.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("web.tls_cert_file: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var logo []byte
	if c.LogoFile != "" {
		var err error
		if logo, err = os.ReadFile(c.LogoFile); err != nil {
			return fmt.Errorf("web.logo_file: %w", err)
		}
	}
	var err error
	m.Web, err = webui.New(webui.Options{
		Language: c.Language, Title: c.Title, Logo: logo, LogoName: c.LogoFile,
		Listen: c.Listen, BaseURL: c.BaseURL, Users: users, Location: m.loc,
		Backend: &backend{m: m}, Logger: m.Logger, Now: m.Now,
		TLSConfig: tlsConfig, TLS: strings.HasPrefix(c.BaseURL, "https://"),
		OnLogin: m.Metrics.WebLogin, DefaultValidity: time.Duration(m.Config.SMPP.Validity),
		Cluster: m.clusterNames(), // cluster.go
	})
	if err != nil {
		return fmt.Errorf("web: %w", err)
	}
	if err := m.Web.Open(); err != nil {
		return fmt.Errorf("web.listen: %w", err)
	}
	return nil
}

func (m *Main) closeWeb(ctx context.Context) error {
	if m.Web == nil {
		return nil
	}
	return m.Web.Close(ctx)
}

// WebAddr returns the bound console address.
func (m *Main) WebAddr() string {
	if m.Web == nil {
		return ""
	}
	return m.Web.Addr()
}

// backend joins the store, the engine and the reporter for the console and
// the API (webui.Backend).
type backend struct{ m *Main }

var (
	_ webui.Backend       = (*backend)(nil)
	_ webui.PrefStore     = (*backend)(nil)
	_ webui.AuditSearcher = (*backend)(nil)
)

// AuditSearch serves the Audit page and GET /api/v1/audit.
func (b *backend) AuditSearch(_ context.Context, f webui.AuditFilter) ([]campaignd.AuditEntry, int, error) {
	return b.m.DB.AuditSearch(campaignd.AuditQuery{BroadcastID: f.BroadcastID, User: f.User, From: f.From, To: f.To,
		Offset: f.Offset, Limit: f.Limit})
}

// UserPref and SetUserPref keep each console user's choices (the
// language) in the store, across sessions and restarts.
func (b *backend) UserPref(user, key string) (string, error) { return b.m.DB.UserPref(user, key) }

func (b *backend) SetUserPref(user, key, value string) error {
	return b.m.DB.SetUserPref(user, key, value)
}

func (b *backend) Broadcasts(_ context.Context, status campaignd.Status, offset, limit int) ([]*campaignd.Broadcast, int, error) {
	return b.m.DB.Broadcasts(campaignd.BroadcastFilter{Status: status, Offset: offset, Limit: limit})
}

func (b *backend) Broadcast(_ context.Context, id uint64) (*campaignd.Broadcast, error) {
	return b.m.DB.Broadcast(id)
}

func (b *backend) Preview(_ context.Context, id uint64, n int) ([]*campaignd.Message, error) {
	var out []*campaignd.Message
	err := b.m.DB.Messages(id, 0, func(msg *campaignd.Message) error {
		out = append(out, msg)
		if len(out) >= n {
			return campaignd.ErrStop
		}
		return nil
	})
	if errors.Is(err, campaignd.ErrStop) {
		err = nil
	}
	return out, err
}

func (b *backend) Messages(_ context.Context, id uint64, fn func(*campaignd.Message) error) error {
	return b.m.DB.Messages(id, 0, fn)
}

func (b *backend) Upload(_ context.Context, id uint64, maxErrors int) (*campaignd.Upload, error) {
	return b.m.DB.UploadSummary(id, maxErrors)
}

func (b *backend) Uploads(_ context.Context, offset, limit, maxErrors int) ([]*campaignd.Upload, int, error) {
	return b.m.DB.UploadsPage(offset, limit, maxErrors)
}

func (b *backend) UploadErrors(_ context.Context, id uint64, offset, limit int) (*campaignd.Upload, int, error) {
	return b.m.DB.UploadErrors(id, offset, limit)
}

func (b *backend) AuditLog(_ context.Context, id uint64) ([]campaignd.AuditEntry, error) {
	return b.m.DB.AuditLog(id)
}

// In a cluster, actions and pushes run on the leader (relayed through the
// database from any other node), and a node that does not send shows no
// rate or ETA (cluster.go).

func (b *backend) Act(ctx context.Context, r campaignd.ActionRequest) (*campaignd.Broadcast, error) {
	if c := b.m.cluster; c != nil {
		return c.act(ctx, r)
	}
	return b.m.Engine.Act(ctx, r)
}

func (b *backend) Progress(id uint64) (float64, time.Duration) {
	if c := b.m.cluster; c != nil {
		if e := b.m.sending().engine; e != nil {
			return e.Progress(id)
		}
		return 0, 0
	}
	return b.m.Engine.Progress(id)
}

func (b *backend) Reports(ctx context.Context) ([]*campaignd.Report, error) {
	if c := b.m.cluster; c != nil {
		r, err := c.reports()
		if err != nil {
			return nil, err
		}
		return r.Reports(ctx)
	}
	return b.m.Reporter.Reports(ctx)
}

func (b *backend) ReportCSV(ctx context.Context, day string, w io.Writer) (*campaignd.Report, error) {
	if c := b.m.cluster; c != nil {
		r, err := c.reports()
		if err != nil {
			return nil, err
		}
		return r.ReportCSV(ctx, day, w)
	}
	return b.m.Reporter.ReportCSV(ctx, day, w)
}

func (b *backend) PushReport(ctx context.Context, day, user, remoteAddr string) (*campaignd.Report, error) {
	if c := b.m.cluster; c != nil {
		return c.pushReport(ctx, day, user, remoteAddr)
	}
	return b.m.Reporter.PushReport(ctx, day, user, remoteAddr)
}

func (b *backend) SaveSession(s *campaignd.Session) error        { return b.m.DB.SaveSession(s) }
func (b *backend) Session(id string) (*campaignd.Session, error) { return b.m.DB.Session(id) }
func (b *backend) DeleteSession(id string) error                 { return b.m.DB.DeleteSession(id) }

// Ready: the store answers and the FTP listener accepts; the SMSC state is
// reported but does not make the process unready (broadcasts wait for it).
func (b *backend) Ready(context.Context) (bool, map[string]string) {
	ok := true
	detail := map[string]string{"store": "ok", "ftp": "ok", "smsc": "bound"}
	if err := b.m.DB.Ping(); err != nil {
		ok, detail["store"] = false, err.Error()
	}
	if b.m.FTP == nil {
		ok, detail["ftp"] = false, "not listening"
	}
	p := b.m.sending() // in a cluster, nil on a node that does not lead
	if p.sender == nil || !p.sender.Bound() {
		detail["smsc"] = "not bound"
	}
	if c := b.m.cluster; c != nil {
		c.ready(detail) // role: leader or follower, and who leads
		if p.sender == nil {
			detail["smsc"] = "not bound here (the leader sends)"
		}
	}
	if p.client != nil {
		// One entry per bind: "smsc_transceiver#2": "bound", "smsc_receiver": "not bound", ...
		for _, st := range p.client.Binds() {
			state := "not bound"
			if st.Bound {
				state = "bound"
			}
			detail["smsc_"+st.Name] = state
		}
	}
	return ok, detail
}
