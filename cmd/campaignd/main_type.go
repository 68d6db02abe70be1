package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/pelletier/go-toml/v2"
	"golang.org/x/crypto/bcrypt"

	"campaignd"
	"campaignd/ftpd"
	"campaignd/metrics"
	"campaignd/pipeline/engine"
	"campaignd/pipeline/ingest"
	"campaignd/pipeline/replies"
	"campaignd/pipeline/report"
	"campaignd/pipeline/wheel"
	"campaignd/smpp"
	"campaignd/webui"
)

// Main is the program: its configuration and every component, joined. Tests
// start the real Main on 127.0.0.1:0 ports in a temporary directory.
type Main struct {
	Config     Config
	ConfigPath string
	Demo       bool
	Logger     *slog.Logger
	Now        func() time.Time

	stdout, stderr io.Writer
	loc            *time.Location

	DB       Store
	Metrics  *metrics.Metrics
	FTP      *ftpd.Server
	Inbox    *ftpd.Inbox // the jails as ingest reads and places uploads
	Ingester *ingest.Ingester
	Web      *webui.Server
	Sim      *smpp.Simulator
	SMPP     *smpp.Client
	Sender   engine.Sender
	Wheel    *wheel.Wheel
	Engine   *engine.Engine
	Reporter *report.Reporter
	Replies  *replies.Replies // optout.go

	cluster *clusterNode // with [store] engine = "postgres" (cluster.go)
	// files holds the FTP jails in PostgreSQL when clustered (cluster.go);
	// nil: they are on disk under DATA_DIR/ftp.
	files *filesDB
	// ingestHold is read-locked by each pass of the ingest worker; a test
	// write-locks it to hold ingest back.
	ingestHold sync.RWMutex

	metricsLn  net.Listener
	metricsSrv *http.Server

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	kick     chan struct{} // wakes the ingest worker
	closeOne sync.Once
}

// ingestOptions are the file rules of c, the same for serve and for
// check-file (which runs without a store, so nothing more).
func ingestOptions(c Config, loc *time.Location) ingest.Options {
	return ingest.Options{
		Location: loc, MaxRows: c.Ingest.MaxRows, MaxInvalidPercent: c.Ingest.MaxInvalidPercent,
		MaxSegments: c.Ingest.MaxSegments, DefaultSender: c.Ingest.DefaultSender,
		AllowedCountries: c.Ingest.AllowedCountries, MaxUploadBytes: c.FTP.MaxUploadBytes,
		MaxFieldBytes: c.Ingest.MaxFieldBytes, MaxRecordBytes: c.Ingest.MaxRecordBytes, MaxErrorRows: c.Ingest.MaxErrorRows,
		Language: c.Ingest.Language,
	}
}

// defaultMemoryLimit is the soft Go heap limit unless GOMEMLIMIT is set:
// with Badger's mapped files on top, it keeps a million-row ingest and a
// million-message send under 256 MB of RSS (docs/DECISIONS.md).
const defaultMemoryLimit = 144 << 20

// NewMain returns a Main with the default (demo) configuration.
func NewMain(stdout, stderr io.Writer) *Main {
	return &Main{Config: DefaultConfig(), stdout: stdout, stderr: stderr, Now: time.Now, kick: make(chan struct{}, 1)}
}

// ParseFlags reads the command line and the configuration: with no
// subcommand and no config, demo mode.
func (m *Main) ParseFlags(cmd string, args []string) error {
	fs := flag.NewFlagSet("campaignd "+cmd, flag.ContinueOnError)
	fs.SetOutput(m.stderr)
	fs.StringVar(&m.ConfigPath, "config", os.Getenv("CAMPAIGND_CONFIG"), "configuration file (TOML)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if m.ConfigPath == "" {
		if cmd == "serve" {
			return errors.New("serve needs --config FILE (or CAMPAIGND_CONFIG); run without arguments for demo mode")
		}
		m.Demo = true
	} else {
		c, err := LoadConfig(m.ConfigPath)
		if err != nil {
			return err
		}
		m.Config = c
	}
	if err := m.Config.ApplyEnv(os.Getenv); err != nil {
		return err
	}
	if err := m.Config.Validate(); err != nil {
		return err
	}
	if !m.Demo && (len(m.Config.FTP.Users) == 0 || len(m.Config.Web.Users) == 0) {
		return errors.New("config: ftp.users and web.users must each list at least one user (there are no default credentials outside demo mode)")
	}
	return nil
}

// Run opens every component; listeners are bound before it returns, so
// errors surface at once. Work continues in goroutines until Close.
func (m *Main) Run(ctx context.Context) (err error) {
	c := &m.Config
	m.Logger = newLogger(m.stderr, c.Log)
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft heap limit keeps a million-row ingest under the 256 MB RSS
		// bar (SPEC §10): the GC works harder instead of growing the heap.
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	m.loc, err = time.LoadLocation(c.Timezone)
	if err != nil {
		return fmt.Errorf("config: timezone: %w", err)
	}
	if err := os.MkdirAll(c.DataDir, 0o750); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	if m.Demo {
		if err := m.demoUsers(); err != nil {
			return err
		}
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())

	m.DB, err = m.openStore() // cluster.go
	if err != nil {
		return err
	}
	m.Metrics = metrics.New(m.broadcastCounts)
	if err := m.openMetrics(); err != nil {
		return err
	}

	if m.files, err = m.openFiles(); err != nil { // cluster.go: nil alone
		return err
	}
	opts := ingestOptions(*c, m.loc)
	m.Inbox = ftpd.NewInbox(ftpd.InboxOptions{Root: m.ftpRoot(), Jail: m.files.jail(), Location: m.loc})
	opts.DuplicateWindow, opts.Inbox = time.Duration(c.Ingest.DuplicateWindow), m.Inbox
	opts.Now, opts.Logger, opts.Events = m.Now, m.Logger, m.Metrics
	m.Ingester = ingest.NewIngester(m.DB, opts)
	if err := m.openLeading(); err != nil { // cluster.go: alone, openSending
		return err
	}
	if !c.clustered() { // in a cluster the leader ingests (clusterNode.lead)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.ingestLoop(m.ctx)
		}()
	}
	if err := m.openFTP(); err != nil {
		return err
	}
	if err := m.openWeb(); err != nil {
		return err
	}
	m.startCluster()
	m.Logger.Info("campaignd ready", "ftp", m.FTP.Addr(), "web", m.WebAddr(), "metrics", m.MetricsAddr(), "data_dir", c.DataDir, "demo", m.Demo)
	if m.Demo {
		fmt.Fprintf(m.stdout, "\nReady. Upload a file:  curl -T file.csv ftp://syniverse:PASSWORD@%s/\nConsole: http://%s/   Metrics: http://%s/metrics\n\n", m.FTP.Addr(), m.WebAddr(), m.MetricsAddr())
	}
	return nil
}

// Close stops taking uploads, finishes in-flight work, flushes the store.
func (m *Main) Close() error {
	var errs []error
	m.closeOne.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if m.FTP != nil {
			errs = append(errs, m.FTP.Close(ctx))
		}
		errs = append(errs, m.closeWeb(ctx))
		if m.cancel != nil {
			m.cancel()
		}
		m.wg.Wait()
		if m.Inbox != nil {
			errs = append(errs, m.Inbox.Close())
		}
		errs = append(errs, m.closeSending(ctx))
		if m.metricsSrv != nil {
			errs = append(errs, m.metricsSrv.Shutdown(ctx))
		}
		if m.DB != nil {
			errs = append(errs, m.DB.Close())
		}
		m.files.close()
	})
	return errors.Join(errs...)
}

func (m *Main) openMetrics() error {
	ln, err := net.Listen("tcp", m.Config.Metrics.Listen)
	if err != nil {
		return fmt.Errorf("metrics.listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Metrics.Handler())
	m.metricsLn = ln
	m.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go m.metricsSrv.Serve(ln)
	return nil
}

// MetricsAddr returns the bound metrics address.
func (m *Main) MetricsAddr() string { return m.metricsLn.Addr().String() }

func (m *Main) broadcastCounts() map[string]int {
	out := map[string]int{}
	if m.DB == nil {
		return out
	}
	list, _, err := m.DB.Broadcasts(campaignd.BroadcastFilter{})
	if err != nil {
		return out
	}
	for _, b := range list {
		out[string(b.Status)]++
	}
	return out
}

func (m *Main) openFTP() error {
	c := &m.Config.FTP
	lo, hi, _ := c.PassiveRange()
	users := make([]ftpd.User, len(c.Users))
	for i, u := range c.Users {
		users[i] = ftpd.User{Name: u.Name, PasswordHash: u.PasswordHash}
	}
	// Queued files are claimed by unfinished jobs; ftpd removes the others
	// at start (left by a crash before their job was recorded).
	var queued func(user, stored string) bool
	if jobs, err := m.DB.Jobs(); err == nil {
		claimed := make(map[[2]string]bool, len(jobs))
		for _, j := range jobs {
			claimed[[2]string{j.Upload.User, j.Upload.Stored}] = true
		}
		queued = func(user, stored string) bool { return claimed[[2]string{user, stored}] }
	} else {
		m.Logger.Warn("listing ingest jobs failed; keeping every queued upload", slog.Any("error", err))
	}
	var err error
	m.FTP, err = ftpd.New(ftpd.Options{
		Listen: c.Listen, Root: m.ftpRoot(), Users: users, Folders: []string{campaignd.SuppressionsDir},
		PassivePortStart: lo, PassivePortEnd: hi, PublicHost: c.PublicHost,
		TLSMode: c.TLS, TLSCertFile: c.TLSCertFile, TLSKeyFile: c.TLSKeyFile,
		MaxUploadBytes: c.MaxUploadBytes, IdleTimeout: time.Duration(c.IdleTimeout),
		MaxConnectionsPerIP: c.MaxConnectionsPerIP, BanAfter: c.BanAfter,
		BanWindow: time.Duration(c.BanWindow), BanFor: time.Duration(c.BanFor), CompleteOn: c.CompleteOn,
		OnUpload: m.onUpload, Queued: queued, Events: m.Metrics, Logger: m.Logger, Now: m.Now,
		Jail: m.files.jail(),
	})
	if err != nil {
		return fmt.Errorf("ftp: %w", err)
	}
	if err := m.FTP.Open(); err != nil {
		return fmt.Errorf("ftp.listen: %w", err)
	}
	return nil
}

// ftpRoot is where ftpd keeps the users' jails.
func (m *Main) ftpRoot() string { return filepath.Join(m.Config.DataDir, "ftp") }

// onUpload runs before the 226: it records the upload and its ingest job
// durably, then wakes the ingest worker.
func (m *Main) onUpload(ctx context.Context, u ftpd.Upload) error {
	// Path is the name the partner gave (results are placed under its base
	// name); Stored is where ftpd queued these bytes, unique to this upload.
	up := &campaignd.Upload{
		User: u.User, Path: u.Path, Stored: u.Stored, FileName: path.Base(u.Path), Size: u.Size, SHA256: u.SHA256, RemoteAddr: u.RemoteAddr, ReceivedAt: u.At, Via: u.Via,
	}
	if _, err := m.DB.CreateUpload(up); err != nil {
		m.Logger.Error("recording upload failed", "path", u.Path, slog.Any("error", err))
		return err
	}
	select {
	case m.kick <- struct{}{}:
	default:
	}
	m.uploaded(ctx)
	return nil
}

// ingestLoop runs the recorded ingest jobs until ctx ends: at start-up
// those left by a crash, then each new one as soon as it is recorded. The store is the
// queue, so nothing recorded is ever lost. Each job runs within its retry
// policy (ingest.Ingester.Attempt): a failed job waits for its retry time,
// and a job that cannot finish ends as a rejected upload, so nothing is
// retried for ever. Alone it runs for Main's life; in a cluster for each of
// the leader's terms, so exactly one node runs the jobs (the files are in
// the database, whichever node took them).
func (m *Main) ingestLoop(ctx context.Context) {
	const listRetry = 5 * time.Second
	for {
		var next time.Time // earliest retry due
		jobs, err := m.DB.Jobs()
		if err != nil {
			m.Logger.Error("listing ingest jobs failed", slog.Any("error", err))
			next = m.Now().Add(listRetry)
		}
		m.ingestHold.RLock()
		for _, job := range jobs {
			if ctx.Err() != nil {
				break
			}
			b, retryAt, err := m.Ingester.Attempt(ctx, job)
			if ctx.Err() != nil {
				break
			}
			if err != nil && retryAt.IsZero() {
				m.Logger.Warn("ingest job ended: the upload is rejected", slog.String("upload", job.Upload.Path), slog.Any("error", err))
			}
			if !retryAt.IsZero() && (next.IsZero() || retryAt.Before(next)) {
				next = retryAt
			}
			if b != nil {
				m.admit(b)
			}
		}
		m.ingestHold.RUnlock()
		if ctx.Err() != nil {
			return
		}
		// A job waiting for a retry is tried when due, or at once when a
		// new upload arrives (then only the due ones run).
		var retry <-chan time.Time
		if !next.IsZero() {
			retry = time.After(max(next.Sub(m.Now()), 10*time.Millisecond))
		}
		var scan <-chan time.Time // a cluster's leader also looks now and then (cluster.go)
		if m.cluster != nil {
			scan = time.After(ingestScan)
		}
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		case <-retry:
		case <-scan:
		}
	}
}

// demoUsers creates the demo's FTP and web users on first start, printing
// their random passwords once and keeping only the hashes.
func (m *Main) demoUsers() error {
	path := filepath.Join(m.Config.DataDir, "demo-users.toml")
	type users struct {
		FTP []FTPUser `toml:"ftp_users"`
		Web []WebUser `toml:"web_users"`
	}
	var u users
	if b, err := os.ReadFile(path); err == nil {
		if err := toml.Unmarshal(b, &u); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		fmt.Fprintf(m.stdout, "Demo users from %s (their passwords were printed at first start; delete the file to get new ones).\n", path)
	} else {
		ftpPw, webPw := randomPassword(), randomPassword()
		fh, _ := bcrypt.GenerateFromPassword([]byte(ftpPw), bcrypt.DefaultCost)
		wh, _ := bcrypt.GenerateFromPassword([]byte(webPw), bcrypt.DefaultCost)
		u.FTP = []FTPUser{{Name: "syniverse", PasswordHash: string(fh)}}
		u.Web = []WebUser{{Name: "admin", PasswordHash: string(wh), Role: "admin"}}
		b, _ := toml.Marshal(u)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return fmt.Errorf("demo users: %w", err)
		}
		fmt.Fprintf(m.stdout, "\nDemo mode: created users (shown once, only their hashes are kept in %s)\n  FTP  syniverse / %s\n  web  admin     / %s\n", path, ftpPw, webPw)
	}
	m.Config.FTP.Users = append(m.Config.FTP.Users, u.FTP...)
	m.Config.Web.Users = append(m.Config.Web.Users, u.Web...)
	return nil
}

func randomPassword() string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 16)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func newLogger(w io.Writer, c LogConfig) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(strings.ToUpper(c.Level)))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
