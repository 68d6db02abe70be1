package ftpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
	"golang.org/x/crypto/bcrypt"

	"campaignd/pgfs"
)

// bcryptConcurrency is how many FTP password checks run at once; more
// wait, so a login flood cannot take every core.
const bcryptConcurrency = 2

// Defaults applied by New to zero-valued Options fields.
const (
	DefaultMaxUploadBytes      = 1 << 30
	DefaultIdleTimeout         = 5 * time.Minute
	DefaultMaxConnectionsPerIP = 20
	DefaultBanAfter            = 10
	DefaultBanWindow           = 10 * time.Minute
	DefaultBanFor              = 30 * time.Minute
	DefaultFailedLoginDelay    = time.Second
)

// TLS modes accepted in Options.TLSMode.
const (
	TLSOff      = "off"      // plain FTP only
	TLSExplicit = "explicit" // AUTH TLS offered, plain allowed
	TLSRequired = "required" // AUTH TLS mandatory before login and for data
	TLSImplicit = "implicit" // TLS from the first byte (port 990 style)
)

// User is an FTP account. Name is also the name of its jail directory.
type User struct {
	Name         string
	PasswordHash string // bcrypt hash
}

// Options configure a Server. Zero values get the defaults listed on each
// field; cmd/campaignd owns the configuration file and passes its values here.
type Options struct {
	// Listen is the control address, e.g. "127.0.0.1:2121"; tests use "127.0.0.1:0".
	Listen string
	// Root is DATA_DIR/ftp. Each user is jailed in Root/<user>/, created on
	// Open with mode 0750.
	Root string
	// Jail, when set, replaces Root: the filesystem of user's jail, its
	// names FTP paths ("/in/x.csv"), e.g. a pgfs.Fs shared by every node of
	// a cluster. It is called once per user in Open, whose MkdirAll("/")
	// creates the jail. Such an Fs must make Sync and Close durable and a
	// Rename durable when it returns (ftpd does no directory fsync there),
	// and is swept with QueueSweepAge (see Queued).
	Jail func(user string) (afero.Fs, error)
	// QueueSweepAge applies to a shared Jail only: Open's sweep of the
	// upload queue leaves a file alone until it has been in the queue this
	// long (by pgfs.Sys.Changed, else ModTime), since another live node may
	// have queued it and not yet recorded its job. Default one hour.
	QueueSweepAge time.Duration
	// Users are the accounts; each gets its own jail.
	Users []User
	// Folders are created at the top of each jail on Open (mode 0750),
	// e.g. campaignd.SuppressionsDir, where partners drop opt-out lists.
	Folders []string

	// PassivePortStart and PassivePortEnd bound the passive data ports;
	// 0, 0 lets the OS pick. ftpserverlib listens for data connections on
	// all interfaces (0.0.0.0), whatever Listen says; it only accepts a data
	// connection from the control connection's peer IP.
	PassivePortStart, PassivePortEnd int
	// PublicHost is the IPv4 address announced in 227 replies; "" announces
	// the control connection's local address.
	PublicHost string

	// TLSMode is "off" (default), "explicit", "required" or "implicit".
	TLSMode string
	// TLSCertFile and TLSKeyFile are PEM files, loaded once by New; needed
	// unless TLSMode is "off" or TLSConfig is set.
	TLSCertFile, TLSKeyFile string
	// TLSConfig, when set, is used instead of TLSCertFile/TLSKeyFile.
	TLSConfig *tls.Config

	// MaxUploadBytes caps one upload (default 1 GiB; negative: no cap).
	MaxUploadBytes int64
	// IdleTimeout cuts a data connection that moves no byte for this long
	// (removing the partial upload) and a control connection this long after
	// its last complete command, however many bytes of an unfinished one
	// trickle in (rounded up to whole seconds). Default 5m; negative
	// disables both.
	IdleTimeout time.Duration
	// MaxConnectionsPerIP caps concurrent control connections from one IP
	// (default 20; negative: no cap).
	MaxConnectionsPerIP int

	// BanAfter failed logins from one IP within BanWindow ban that IP for
	// BanFor (defaults 10, 10m, 30m; BanAfter negative disables banning).
	BanAfter          int
	BanWindow, BanFor time.Duration
	// FailedLoginDelay delays the reply to a failed login (default 1s;
	// negative: no delay).
	FailedLoginDelay time.Duration

	// CompleteOn is what completes an upload, i.e. triggers OnUpload:
	// "stor" (default: the STOR of a .csv name, or a rename to one),
	// "rename" (only a rename to a .csv name) or "marker" (the upload of, or
	// a rename to, NAME.csv.done or NAME.csv.ok completes NAME.csv).
	CompleteOn string

	// OnUpload is called for every completed upload that triggers ingest
	// (see the package documentation), before the client gets its reply. It
	// must record the job durably and return quickly; an error fails the
	// upload. Nil means nothing triggers.
	OnUpload func(ctx context.Context, u Upload) error
	// Queued reports whether the queued file stored (an Upload.Stored) of
	// user belongs to a recorded ingest job that has not finished. Open
	// removes queued files for which it returns false: a crash between
	// queueing an upload and recording its job leaves one (the client got
	// no 226 and uploads again). Nil keeps every queued file. With a shared
	// Jail only files older than QueueSweepAge are removed.
	Queued func(user, stored string) bool
	// Events receives counters for metrics; nil means none.
	Events Events
	// Logger defaults to a discarding logger.
	Logger *slog.Logger
	// Now is the clock for bans and Upload.At; default time.Now.
	Now func() time.Time
}

// Upload describes a completed upload handed to Options.OnUpload.
type Upload struct {
	// User is the FTP account that uploaded.
	User string
	// Path is the file inside the jail as the partner named it,
	// slash-separated and rooted: "/in/x.csv".
	Path string
	// Stored is where the bytes wait for ingest, inside the jail: a unique
	// name in the hidden queue directory, so that another upload to Path
	// never touches them.
	Stored string
	// Size and SHA256 (lower-case hex) describe the file's content: computed
	// while streaming for STOR, read back from the file for RNTO.
	Size   int64
	SHA256 string
	// RemoteAddr is the client's control-connection address.
	RemoteAddr string
	// Via is "STOR", "RNTO" or "MARKER" (campaignd.ViaSTOR, ViaRename, ViaMarker).
	Via string
	// At is when the upload completed (Options.Now).
	At time.Time
}

// Events receives one call per countable event, for metrics. Implementations
// must be safe for concurrent use and must not block.
type Events interface {
	// FTPLogin reports a login attempt: "ok", "bad_credentials", "banned"
	// (also reported when a banned IP connects) or "tls_required".
	FTPLogin(result string)
	// FTPConnectionOpened reports an accepted control connection.
	FTPConnectionOpened()
	// FTPConnectionClosed reports the end of a connection reported as opened.
	FTPConnectionClosed()
	// UploadFinished reports the end of an upload: "stored" (kept, does not
	// trigger), "triggered" (OnUpload accepted it, also for RNTO), "aborted"
	// (transfer error, ABOR, reset, idle timeout), "too_large" or "failed"
	// (disk error or OnUpload error).
	UploadFinished(result string)
}

// Values of Options.CompleteOn.
const (
	CompleteOnSTOR   = "stor"
	CompleteOnRename = "rename"
	CompleteOnMarker = "marker"
)

// Upload results reported to Events.UploadFinished.
const (
	resultStored    = "stored"
	resultTriggered = "triggered"
	resultAborted   = "aborted"
	resultTooLarge  = "too_large"
	resultFailed    = "failed"
)

// Login results reported to Events.FTPLogin.
const (
	loginOK          = "ok"
	loginBad         = "bad_credentials"
	loginBanned      = "banned"
	loginTLSRequired = "tls_required"
)

type nopEvents struct{}

func (nopEvents) FTPLogin(string)       {}
func (nopEvents) FTPConnectionOpened()  {}
func (nopEvents) FTPConnectionClosed()  {}
func (nopEvents) UploadFinished(string) {}

var validUserName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Server is the FTP server. Create it with New, start it with Open and stop
// it with Close. A Server is opened at most once.
type Server struct {
	opts      Options
	log       *slog.Logger
	events    Events
	now       func() time.Time
	root      string            // absolute Options.Root
	users     map[string][]byte // name -> bcrypt hash
	dummyHash []byte            // compared for unknown users, same cost
	tlsConfig *tls.Config       // nil when TLSMode is off
	guard     *guard
	// bcryptSlots bounds concurrent password checks; passwordChecks counts
	// them (tests assert that a burst of attempts is not all checked).
	bcryptSlots    chan struct{}
	passwordChecks atomic.Int64

	ftp      *ftpserver.FtpServer
	listener net.Listener         // what ftpserverlib accepts from
	track    *trackListener       // the control connections, for Close
	jails    map[string]*userJail // by user, opened in Open
	served   chan struct{}        // closed when Serve returns

	// ctx is given to OnUpload; it is cancelled when Close gives up waiting.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	closing  bool
	closed   chan struct{}       // closed when Close starts
	sessions map[uint32]struct{} // admitted control connections, by ID
	busy     int                 // sessions + uploads in flight
	drained  chan struct{}       // closed when closing && busy == 0
}

// New validates opts, fills defaults and loads the TLS certificate. It does
// not touch the network or the disk beyond reading the certificate.
func New(opts Options) (*Server, error) {
	if err := fillDefaults(&opts); err != nil {
		return nil, err
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("ftpd: root: %w", err)
	}
	users, dummy, err := loadUsers(opts.Users)
	if err != nil {
		return nil, err
	}
	tlsConfig, err := loadTLS(opts)
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	events := opts.Events
	if events == nil {
		events = nopEvents{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:      opts,
		log:       logger.With(slog.String(keySystem, "ftpd")),
		events:    events,
		now:       opts.Now,
		root:      root,
		users:     users,
		dummyHash: dummy,
		tlsConfig: tlsConfig,
		ctx:       ctx,
		cancel:    cancel,
		closed:    make(chan struct{}),
		drained:   make(chan struct{}),
		sessions:  make(map[uint32]struct{}),

		bcryptSlots: make(chan struct{}, bcryptConcurrency),
	}
	s.guard = newGuard(opts.BanAfter, opts.BanWindow, opts.BanFor, opts.MaxConnectionsPerIP, opts.Now)
	return s, nil
}

func fillDefaults(o *Options) error {
	if o.Listen == "" {
		return errors.New("ftpd: listen address is empty")
	}
	if o.Root == "" && o.Jail == nil {
		return errors.New("ftpd: root directory is empty")
	}
	if o.QueueSweepAge <= 0 {
		o.QueueSweepAge = DefaultQueueSweepAge
	}
	if o.MaxUploadBytes == 0 {
		o.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxConnectionsPerIP == 0 {
		o.MaxConnectionsPerIP = DefaultMaxConnectionsPerIP
	}
	if o.BanAfter == 0 {
		o.BanAfter = DefaultBanAfter
	}
	if o.BanWindow <= 0 {
		o.BanWindow = DefaultBanWindow
	}
	if o.BanFor <= 0 {
		o.BanFor = DefaultBanFor
	}
	if o.FailedLoginDelay == 0 {
		o.FailedLoginDelay = DefaultFailedLoginDelay
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch o.CompleteOn {
	case "":
		o.CompleteOn = CompleteOnSTOR
	case CompleteOnSTOR, CompleteOnRename, CompleteOnMarker:
	default:
		return fmt.Errorf("ftpd: complete_on %q: want stor, rename or marker", o.CompleteOn)
	}
	switch o.TLSMode {
	case "":
		o.TLSMode = TLSOff
	case TLSOff, TLSExplicit, TLSRequired, TLSImplicit:
	default:
		return fmt.Errorf("ftpd: tls mode %q: want off, explicit, required or implicit", o.TLSMode)
	}
	if o.PassivePortStart != 0 || o.PassivePortEnd != 0 {
		if o.PassivePortStart < 1 || o.PassivePortEnd > 65535 || o.PassivePortStart > o.PassivePortEnd {
			return fmt.Errorf("ftpd: passive ports %d-%d: want 1 <= start <= end <= 65535",
				o.PassivePortStart, o.PassivePortEnd)
		}
	}
	if o.PublicHost != "" {
		if ip := net.ParseIP(o.PublicHost); ip == nil || ip.To4() == nil {
			return fmt.Errorf("ftpd: public host %q: want an IPv4 address", o.PublicHost)
		}
	}
	return nil
}

func loadUsers(list []User) (map[string][]byte, []byte, error) {
	users := make(map[string][]byte, len(list))
	cost := bcrypt.DefaultCost
	for _, u := range list {
		if !validUserName.MatchString(u.Name) {
			return nil, nil, fmt.Errorf("ftpd: user %q: name must be 1-64 of A-Z a-z 0-9 . _ - and not start with . _ -", u.Name)
		}
		if _, dup := users[u.Name]; dup {
			return nil, nil, fmt.Errorf("ftpd: user %q defined twice", u.Name)
		}
		c, err := bcrypt.Cost([]byte(u.PasswordHash))
		if err != nil {
			return nil, nil, fmt.Errorf("ftpd: user %q: password hash is not bcrypt: %w", u.Name, err)
		}
		cost = c
		users[u.Name] = []byte(u.PasswordHash)
	}
	// An unknown user name costs the same bcrypt comparison as a known one,
	// so response time does not reveal which names exist.
	dummy, err := bcrypt.GenerateFromPassword([]byte("campaignd-no-such-user"), cost)
	if err != nil {
		return nil, nil, fmt.Errorf("ftpd: dummy hash: %w", err)
	}
	return users, dummy, nil
}

func loadTLS(o Options) (*tls.Config, error) {
	if o.TLSMode == TLSOff {
		return nil, nil
	}
	var cfg *tls.Config
	switch {
	case o.TLSConfig != nil:
		cfg = o.TLSConfig.Clone()
	case o.TLSCertFile != "" && o.TLSKeyFile != "":
		cert, err := tls.LoadX509KeyPair(o.TLSCertFile, o.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("ftpd: tls certificate: %w", err)
		}
		cfg = &tls.Config{Certificates: []tls.Certificate{cert}}
	default:
		return nil, fmt.Errorf("ftpd: tls mode %q needs a certificate and key file", o.TLSMode)
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg, nil
}

// Open creates the jail directories, binds the control address and serves
// connections in a goroutine. Errors (e.g. address in use) are returned at once.
func (s *Server) Open() error {
	if s.ftp != nil {
		return errors.New("ftpd: server already opened")
	}
	if err := s.openJails(); err != nil {
		return err
	}
	tcp, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		s.closeJails()
		return fmt.Errorf("ftpd: listen %s: %w", s.opts.Listen, err)
	}
	s.track = newTrackListener(tcp)
	var ln net.Listener = s.track
	if s.opts.TLSMode == TLSImplicit {
		timeout := 30 * time.Second
		if s.opts.IdleTimeout > 0 {
			timeout = min(timeout, s.opts.IdleTimeout)
		}
		ln = &implicitListener{Listener: ln, cfg: s.tlsConfig, timeout: timeout}
	}
	s.listener = ln
	s.ftp = ftpserver.NewFtpServer(driver{s})
	s.ftp.Logger = slog.New(warnOnly{s.log.Handler()}).With(slog.String(keyComponent, "ftpserverlib"))
	if err := s.ftp.Listen(); err != nil {
		_ = ln.Close()
		s.closeJails()
		return fmt.Errorf("ftpd: listen: %w", err)
	}
	s.served = make(chan struct{})
	go func() {
		defer close(s.served)
		if err := s.ftp.Serve(); err != nil {
			s.log.Error("serve stopped", slog.Any(keyError, err))
		}
	}()
	s.log.Info("listening", slog.String(keyAddr, ln.Addr().String()),
		slog.String(keyTLSMode, s.opts.TLSMode), slog.String(keyRoot, s.root))
	return nil
}

func (s *Server) openJails() error {
	s.jails = make(map[string]*userJail, len(s.users))
	if s.opts.Jail == nil {
		if err := os.MkdirAll(s.root, 0o750); err != nil {
			return fmt.Errorf("ftpd: create root: %w", err)
		}
	}
	for name := range s.users {
		j, err := s.openJail(name)
		if err != nil {
			s.closeJails()
			return err
		}
		s.jails[name] = j
		for _, f := range s.opts.Folders {
			if err := j.fs.Mkdir("/"+rel(f), dirPerm); err != nil && !errors.Is(err, os.ErrExist) {
				s.log.Warn("cannot create a folder in the jail", slog.String(keyUser, name),
					slog.String(keyPath, "/"+rel(f)), slog.Any(keyError, err))
			}
		}
		if s.opts.Queued != nil {
			s.sweepQueue(name, j)
		}
		if j.shared() {
			s.sweepTemps(name, j, "/")
		}
	}
	return nil
}

// sweepTemps removes, under dir of a shared jail, the temporary files of
// uploads cut short by the death of the node that took them: those not
// written to for QueueSweepAge (a live upload writes, or its idle timeout
// ends it, long before). On disk a node restarts on its own jails and
// keeps what it always did.
func (s *Server) sweepTemps(user string, j *userJail, dir string) {
	entries, err := j.readDir(dir)
	if err != nil {
		s.log.Warn("upload sweep: list", slog.String(keyUser, user), slog.String(keyPath, dir), slog.Any(keyError, err))
		return
	}
	for _, fi := range entries {
		p := path.Join(dir, fi.Name())
		switch {
		case fi.IsDir() && fi.Name() != queueDir:
			s.sweepTemps(user, j, p)
		case fi.Mode().IsRegular() && strings.HasPrefix(fi.Name(), tempPrefix) && strings.HasSuffix(fi.Name(), ".tmp") &&
			s.now().Sub(fi.ModTime()) >= s.opts.QueueSweepAge:
			if err := j.fs.Remove(p); err != nil {
				s.log.Warn("upload sweep: remove", slog.String(keyUser, user), slog.String(keyPath, p), slog.Any(keyError, err))
				continue
			}
			s.log.Warn("upload sweep: removed an upload left unfinished by a node that stopped",
				slog.String(keyUser, user), slog.String(keyPath, p))
		}
	}
}

// openJail opens (creating it) the jail of user: Options.Jail's, or
// Root/<user> on disk.
func (s *Server) openJail(name string) (*userJail, error) {
	if s.opts.Jail != nil {
		fsys, err := s.opts.Jail(name)
		if err == nil {
			err = fsys.MkdirAll("/", dirPerm)
		}
		if err != nil {
			return nil, fmt.Errorf("ftpd: open jail for %s: %w", name, err)
		}
		return &userJail{fs: fsys}, nil
	}
	dir := filepath.Join(s.root, name)
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("ftpd: create jail for %s: %w", name, err)
	}
	j, err := openJail(dir)
	if err != nil {
		return nil, fmt.Errorf("ftpd: open jail for %s: %w", name, err)
	}
	return diskJail(j), nil
}

// DefaultQueueSweepAge is Options.QueueSweepAge's default.
const DefaultQueueSweepAge = time.Hour

// sweepQueue removes the queued files of user that no recorded job claims
// (see Options.Queued). On a shared jail it only takes those queued longer
// than QueueSweepAge ago: a younger one may be another node's upload whose
// job is being recorded right now.
func (s *Server) sweepQueue(user string, j *userJail) {
	entries, err := j.readDir("/" + queueDir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("upload queue: list", slog.String(keyUser, user), slog.Any(keyError, err))
		}
		return // no queue yet
	}
	removed := 0
	for _, fi := range entries {
		stored := "/" + queueDir + "/" + fi.Name()
		if !fi.Mode().IsRegular() || (j.shared() && s.now().Sub(queuedAt(fi)) < s.opts.QueueSweepAge) ||
			s.opts.Queued(user, stored) {
			continue
		}
		if err := j.fs.Remove(stored); err != nil {
			s.log.Warn("upload queue: remove unrecorded upload", slog.String(keyUser, user),
				slog.String(keyPath, stored), slog.Any(keyError, err))
			continue
		}
		removed++
		s.log.Warn("upload queue: removed an upload whose job was never recorded",
			slog.String(keyUser, user), slog.String(keyPath, stored))
	}
	if removed > 0 {
		_ = j.syncDir(rel(queueDir) + "/x")
	}
}

// queuedAt is when a queued file got its name: a rename moves pgfs's
// Changed (Unix's ctime), not the ModTime the upload's last write set.
func queuedAt(fi os.FileInfo) time.Time {
	if sys, ok := fi.Sys().(*pgfs.Sys); ok {
		return sys.Changed
	}
	return fi.ModTime()
}

func (s *Server) closeJails() {
	for _, j := range s.jails {
		_ = j.close()
	}
}

// Addr returns the bound control address, or "" before Open.
func (s *Server) Addr() string {
	if s.listener == nil {
		return ""
	}
	return s.listener.Addr().String()
}

// Close stops accepting connections, closes every live session (aborting
// transfers in progress, whose partial files are removed) and waits until all
// sessions and uploads have finished or ctx is done. OnUpload calls still
// running when ctx is done see their context cancelled.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	close(s.closed)
	if s.busy == 0 {
		close(s.drained)
	}
	s.mu.Unlock()

	if s.ftp == nil {
		s.cancel()
		return nil
	}
	var errs []error
	if err := s.ftp.Stop(); err != nil && !errors.Is(err, ftpserver.ErrNotListening) {
		errs = append(errs, fmt.Errorf("ftpd: stop: %w", err))
	}
	s.track.closeConns() // each session ends and calls ClientDisconnected
	select {
	case <-s.served:
	case <-ctx.Done():
	}
	select {
	case <-s.drained:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("ftpd: close: sessions still running: %w", ctx.Err()))
	}
	s.cancel()
	s.closeJails()
	s.log.Info("stopped")
	return errors.Join(errs...)
}

// enter counts a session or an upload as in flight; it fails once Close has
// started, so nothing new begins during shutdown.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.busy++
	return true
}

func (s *Server) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.busy--
	if s.closing && s.busy == 0 {
		close(s.drained)
	}
}
