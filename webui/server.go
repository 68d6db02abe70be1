// Package webui is the operator console (server-rendered HTML with htmx) and
// the JSON API of campaignd. It speaks only in root types: the Backend it
// needs is declared here and implemented in cmd/campaignd by joining the
// store and the engine.
package webui

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/crypto/bcrypt"

	"campaignd"
)

// Backend is everything the console and the API read and do. Errors carry
// campaignd error codes (ENOTFOUND, ECONFLICT, EINVALID); anything else is
// shown to users as an internal error.
type Backend interface {
	// Broadcasts returns one page of broadcasts, newest first, and the total
	// number matching; status "" matches every status.
	Broadcasts(ctx context.Context, status campaignd.Status, offset, limit int) ([]*campaignd.Broadcast, int, error)
	// Broadcast returns one broadcast with live counts, or ENOTFOUND.
	Broadcast(ctx context.Context, id uint64) (*campaignd.Broadcast, error)
	// Preview returns the first n messages of a broadcast (personalised
	// text, encoding, segments).
	Preview(ctx context.Context, id uint64, n int) ([]*campaignd.Message, error)
	// Messages streams every message of a broadcast in Tracking ID order,
	// stopping at the first error fn returns.
	Messages(ctx context.Context, id uint64, fn func(*campaignd.Message) error) error
	// Upload returns one upload by its upload ID (a broadcast's UploadID)
	// with at most maxErrors of its stored errors: the skipped rows of a
	// broadcast are its upload's Errors.
	Upload(ctx context.Context, id uint64, maxErrors int) (*campaignd.Upload, error)
	// Uploads returns one page of uploads, newest first, and the total; each
	// upload carries at most maxErrors of its stored errors (ErrorCount is
	// how many there were). A page must cost no more than its size, however
	// many errors are stored.
	Uploads(ctx context.Context, offset, limit, maxErrors int) ([]*campaignd.Upload, int, error)
	// UploadErrors returns one upload carrying its stored errors from
	// offset, at most limit of them, and how many errors are stored;
	// ENOTFOUND for an unknown upload.
	UploadErrors(ctx context.Context, id uint64, offset, limit int) (*campaignd.Upload, int, error)
	// AuditLog returns the audit trail of a broadcast, oldest first.
	AuditLog(ctx context.Context, id uint64) ([]campaignd.AuditEntry, error)
	// Act applies an operator action and records it in the audit log. It
	// returns the broadcast after the action (for delete, as it was), or
	// ECONFLICT when the action is not allowed in the broadcast's status,
	// EINVALID for a bad request, ENOTFOUND for an unknown broadcast.
	Act(ctx context.Context, r campaignd.ActionRequest) (*campaignd.Broadcast, error)
	// Progress returns the current send rate of a broadcast and the
	// estimated time to submit the rest (0 when unknown).
	Progress(id uint64) (ratePerSec float64, eta time.Duration)
	// Reports returns every daily report, newest first.
	Reports(ctx context.Context) ([]*campaignd.Report, error)
	// ReportCSV writes the report of day (YYYY-MM-DD, local) to w: the
	// archived report of a finished day, or a partial report of today.
	ReportCSV(ctx context.Context, day string, w io.Writer) (*campaignd.Report, error)
	// PushReport pushes day's report (today: a partial one) to the report
	// server now, recording who asked.
	PushReport(ctx context.Context, day string, user, remoteAddr string) (*campaignd.Report, error)
	// SaveSession stores a console session until its ExpiresAt.
	SaveSession(*campaignd.Session) error
	// Session returns a live session, or ENOTFOUND.
	Session(id string) (*campaignd.Session, error)
	// DeleteSession removes a session (logout).
	DeleteSession(id string) error
	// Ready reports whether the service can do its work, with a detail per
	// component (store, ftp, smsc) for /readyz.
	Ready(ctx context.Context) (ok bool, detail map[string]string)
}

// User is a console and API user.
type User struct {
	Name         string
	PasswordHash string // bcrypt
	Role         campaignd.Role
}

// Options configure a Server. Zero values get the defaults noted.
type Options struct {
	Listen   string // default 127.0.0.1:8080
	BaseURL  string // public URL when behind a proxy; its origin is trusted for cross-origin checks
	Users    []User
	Location *time.Location // dates are entered and shown here; default time.Local
	Backend  Backend
	Logger   *slog.Logger
	Now      func() time.Time
	// TLS marks cookies Secure (with the __Host- prefix) and sends HSTS:
	// set it when the console is served over HTTPS, here (TLSConfig) or by
	// a proxy in front.
	TLS bool
	// TLSConfig, if set, makes Open serve HTTPS with it (and implies TLS).
	TLSConfig *tls.Config
	// LoginDelay is how long a failed login waits before its answer;
	// default 1 s.
	LoginDelay time.Duration
	// LoginLockAfter failures of one user name (or 4× as many from one IP)
	// within LoginLockFor lock logins for LoginLockFor; defaults 5 and 15 min.
	LoginLockAfter int
	LoginLockFor   time.Duration
	// SessionTTL is a session's lifetime; default 12 h.
	SessionTTL time.Duration
	// OnLogin, if set, is told the result of every login attempt that was
	// checked or refused: "ok", "bad_credentials" or "throttled".
	OnLogin func(result string)
	// MetricsHandler, if set, is served at /metrics (no auth: bind the web
	// listener accordingly, or leave it nil and use metrics.listen).
	MetricsHandler http.Handler
	// Language is the console's language when neither the user nor the
	// browser chose one: "es" (default) or "en".
	Language string
	// Title names the console in the header and the window title; default
	// "Payback · Campañas".
	Title string
	// Logo, if set, is an image (SVG, PNG, JPEG, WebP or GIF) shown before the title;
	// LogoName is its file name (for its type).
	Logo     []byte
	LogoName string
	// Cluster, if set, names this node and the node that sends (leads), ""
	// when unknown; the header shows them. Nil when running alone.
	Cluster func() (node, leader string)
	// Suppressions serves the Opt-outs and Replies pages and their API
	// (suppressions.go); nil: the Backend's, if it implements it.
	Suppressions SuppressionBackend
	// DefaultValidity is the validity period of a broadcast that sets none
	// (smpp.validity), shown on its page; default 48 h.
	DefaultValidity time.Duration
}

// Server serves the console and the API.
type Server struct {
	o         Options
	log       *slog.Logger
	users     map[string]User
	tmpl      map[string]*templates // by language
	locales   map[string]*locale
	prefMu    sync.Mutex
	prefs     map[string]string // user → language, "" for none
	bd        breakdowns
	static    *staticFiles
	throttle  *throttle
	auth      *authCache
	dummyHash func() []byte
	// compare is bcrypt's check (a field so tests can count the checks);
	// bcryptSem bounds how many run at once.
	compare   func(hash, password []byte) error
	bcryptSem chan struct{}
	router    *chi.Mux
	handler   http.Handler

	mu  sync.Mutex
	ln  net.Listener
	srv *http.Server
}

// Log keys.
const (
	keyError  = "error"
	keyUser   = "user"
	keyRemote = "remote_addr"
	keyMethod = "method"
	keyPath   = "path"
	keyStatus = "status"
	keyDur    = "duration"
	keyAddr   = "addr"

	keyBroadcast = "broadcast_id"
	keyUpload    = "upload_id"
)

// bcryptSlots is how many password checks run at once: a bcrypt costs tens
// of milliseconds of a core, and a login flood must not take them all.
const bcryptSlots = 2

// New checks the options, parses every template and builds the router. A
// missing or broken template fails here, not on a request.
func New(o Options) (*Server, error) {
	if o.Backend == nil {
		return nil, errors.New("webui: no backend")
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:8080"
	}
	if o.TLSConfig != nil {
		o.TLS = true
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LoginDelay == 0 {
		o.LoginDelay = time.Second
	}
	if o.LoginLockAfter == 0 {
		o.LoginLockAfter = 5
	}
	if o.LoginLockFor == 0 {
		o.LoginLockFor = 15 * time.Minute
	}
	if o.SessionTTL == 0 {
		o.SessionTTL = 12 * time.Hour
	}
	if o.Language == "" {
		o.Language = langES
	}
	if o.DefaultValidity <= 0 {
		o.DefaultValidity = 48 * time.Hour
	}
	if o.Title == "" {
		o.Title = "Payback · Campañas"
	}
	if o.OnLogin == nil {
		o.OnLogin = func(string) {}
	}
	s := &Server{
		o:         o,
		log:       o.Logger.With("system", "webui"),
		users:     make(map[string]User, len(o.Users)),
		throttle:  newThrottle(o.LoginLockAfter, o.LoginLockFor, o.Now),
		auth:      newAuthCache(),
		dummyHash: newDummyHash(o.Users),
		compare:   bcrypt.CompareHashAndPassword,
		bcryptSem: make(chan struct{}, bcryptSlots),
		prefs:     map[string]string{},
	}
	for _, u := range o.Users {
		if u.Name == "" || !u.Role.Valid() {
			return nil, fmt.Errorf("webui: user %q: name and a role (admin, operator, viewer) are required", u.Name)
		}
		if _, dup := s.users[u.Name]; dup {
			return nil, fmt.Errorf("webui: user %q listed twice", u.Name)
		}
		s.users[u.Name] = u
	}
	var err error
	if s.static, err = loadStatic(); err != nil {
		return nil, err
	}
	if s.locales, err = newLocales(); err != nil {
		return nil, fmt.Errorf("webui: catalogue: %w", err)
	}
	if _, ok := s.locales[o.Language]; !ok {
		return nil, fmt.Errorf("webui: language %q: use one of %v", o.Language, Languages)
	}
	if len(o.Logo) > 0 {
		if err := s.static.add("logo"+path.Ext(o.LogoName), o.Logo); err != nil {
			return nil, err
		}
	}
	s.tmpl = map[string]*templates{}
	for lang, l := range s.locales {
		if s.tmpl[lang], err = parseTemplates(s.funcs(l)); err != nil {
			return nil, err
		}
	}
	var trusted []string
	if o.BaseURL != "" {
		u, err := url.Parse(o.BaseURL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("webui: base_url %q is not an absolute URL", o.BaseURL)
		}
		trusted = append(trusted, u.Scheme+"://"+u.Host)
	}
	if s.handler, err = s.routes(trusted); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler returns the server's HTTP handler (for tests and for embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// Open binds the listener and serves in the background.
func (s *Server) Open() error {
	ln, err := net.Listen("tcp", s.o.Listen)
	if err != nil {
		return fmt.Errorf("webui: listen %s: %w", s.o.Listen, err)
	}
	if s.o.TLSConfig != nil {
		ln = tls.NewListener(ln, s.o.TLSConfig)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	s.ln, s.srv = ln, srv
	s.mu.Unlock()
	s.log.Info("web console listening", keyAddr, ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("web server stopped", slog.Any(keyError, err))
		}
	}()
	return nil
}

// Addr returns the address the server listens on, or "" before Open.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops accepting requests and waits for those in flight until ctx
// is done.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close()
		return fmt.Errorf("webui: shutdown: %w", err)
	}
	return nil
}
