package ftpd

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"golang.org/x/crypto/bcrypt"
)

// driver is the ftpserverlib MainDriver. It is a separate type so that the
// library's callbacks do not become part of Server's API.
type driver struct{ s *Server }

var (
	_ ftpserver.MainDriver                        = driver{}
	_ ftpserver.MainDriverExtensionUserVerifier   = driver{}
	_ ftpserver.MainDriverExtensionPassiveWrapper = driver{}
)

var (
	errBanned      = errors.New("too many failed logins from your address: try again later")
	errTooMany     = errors.New("too many connections from your address")
	errBadLogin    = errors.New("invalid user name or password")
	errTLSRequired = errors.New("TLS is required: send AUTH TLS first")
	errTLSOff      = errors.New("TLS is not enabled on this server")
)

// GetSettings is called once, by Listen.
func (d driver) GetSettings() (*ftpserver.Settings, error) {
	o := d.s.opts
	// Without an idle timeout the library would never set a deadline,
	// and setting one before each command is how ctrlState learns that a
	// command has been handled: "none" is ten years.
	idle := 10 * 365 * 24 * 3600
	if o.IdleTimeout > 0 {
		idle = int((o.IdleTimeout + time.Second - 1) / time.Second)
	}
	var ports ftpserver.PasvPortGetter
	if o.PassivePortStart != 0 {
		ports = ftpserver.PortRange{Start: o.PassivePortStart, End: o.PassivePortEnd}
	}
	mode := ftpserver.ClearOrEncrypted
	switch o.TLSMode {
	case TLSRequired:
		mode = ftpserver.MandatoryEncryption
	case TLSImplicit:
		mode = ftpserver.ImplicitEncryption // the listener is already TLS (see Open)
	}
	return &ftpserver.Settings{
		Listener:                 d.s.listener,
		PublicHost:               o.PublicHost,
		Banner:                   "campaignd",
		PassiveTransferPortRange: ports,
		IdleTimeout:              idle,
		ConnectionTimeout:        30,
		TLSRequired:              mode,
		DisableMFMT:              true,
		DisableSite:              true,
		DisableActiveMode:        true,
		DefaultTransferType:      ftpserver.TransferTypeBinary,
		// In ASCII mode ftpserverlib's line converter swallows a reset
		// data connection, turning an aborted upload into a truncated
		// "success" (notes/libraries.md §1.5). Store bytes as sent.
		DisableASCIIConversion: true,
	}, nil
}

// ClientConnected admits or refuses a new control connection.
func (d driver) ClientConnected(cc ftpserver.ClientContext) (string, error) {
	s := d.s
	ip := hostOf(cc.RemoteAddr())
	log := s.log.With(slog.Uint64(keySessionID, uint64(cc.ID())), slog.String(keyRemoteAddr, cc.RemoteAddr().String()))
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return errShuttingDown.Error(), errShuttingDown
	}
	switch s.guard.connect(ip) {
	case "banned":
		s.mu.Unlock()
		s.events.FTPLogin(loginBanned)
		log.Warn("connection refused", slog.String(keyReason, "banned"))
		return errBanned.Error(), errBanned
	case "too_many":
		s.mu.Unlock()
		log.Warn("connection refused", slog.String(keyReason, "too_many_connections"))
		return errTooMany.Error(), errTooMany
	}
	s.sessions[cc.ID()] = struct{}{}
	s.busy++
	s.mu.Unlock()
	s.events.FTPConnectionOpened()
	log.Debug("connected")
	return "campaignd FTP server ready", nil
}

// ClientDisconnected is called for every connection, admitted or not.
func (d driver) ClientDisconnected(cc ftpserver.ClientContext) {
	s := d.s
	s.mu.Lock()
	_, ok := s.sessions[cc.ID()]
	delete(s.sessions, cc.ID())
	s.mu.Unlock()
	if !ok {
		return
	}
	s.guard.disconnect(hostOf(cc.RemoteAddr()))
	s.events.FTPConnectionClosed()
	s.leave()
}

// PreAuthUser runs at USER: it refuses banned addresses and user names
// and, in "required" mode, plain-text logins.
func (d driver) PreAuthUser(cc ftpserver.ClientContext, user string) error {
	s := d.s
	ip := hostOf(cc.RemoteAddr())
	if s.guard.banned(ip) || s.guard.bannedUser(user) {
		s.events.FTPLogin(loginBanned)
		return errBanned
	}
	if s.opts.TLSMode == TLSRequired && !cc.HasTLSForControl() {
		s.events.FTPLogin(loginTLSRequired)
		s.log.Warn("login refused", slog.String(keyReason, "tls_required"),
			slog.String(keyUser, user), slog.String(keyRemoteAddr, cc.RemoteAddr().String()))
		return errTLSRequired
	}
	return nil
}

// AuthUser checks the password at PASS and returns the user's session
// driver. The attempt is reserved against the IP's and the user name's
// failure counts before bcrypt runs (see guard.begin), and bcrypt runs at
// most cap(bcryptSlots) at a time: however many attempts arrive at once, at
// most ban_after of them are checked before the ban.
func (d driver) AuthUser(cc ftpserver.ClientContext, user, pass string) (ftpserver.ClientDriver, error) {
	s := d.s
	ip := hostOf(cc.RemoteAddr())
	log := s.log.With(slog.Uint64(keySessionID, uint64(cc.ID())),
		slog.String(keyRemoteAddr, cc.RemoteAddr().String()), slog.String(keyUser, user))
	if !d.reserve(ip, user) {
		s.events.FTPLogin(loginBanned)
		log.Warn("login refused", slog.String(keyReason, "banned"))
		d.delay()
		return nil, errBanned
	}
	ok := d.checkPassword(user, pass)
	banned := s.guard.end(ip, user, !ok)
	if !ok {
		s.events.FTPLogin(loginBad)
		log.Warn("login failed", slog.Bool("banned", banned))
		d.delay()
		return nil, errBadLogin
	}
	s.events.FTPLogin(loginOK)
	log.Info("logged in", slog.Bool("tls", cc.HasTLSForControl()))
	sess := &session{srv: s, jail: s.jails[user], user: user, remote: cc.RemoteAddr().String(), log: log,
		cc: cc, ctrl: s.track.lookup(cc.RemoteAddr().String())}
	sess.allo.Store(-1)
	return sess, nil
}

// reserveWait bounds how long a login waits for attempts in flight to end.
const reserveWait = 30 * time.Second

// reserve waits until a login attempt can be reserved (see guard.begin):
// attempts beyond what could still fail without passing the ban wait for
// the ones in flight, so a burst of correct logins is only slowed down, and
// a burst of wrong ones is refused once the ban falls. It reports false
// when banned, after reserveWait, or when the server closes.
func (d driver) reserve(ip, user string) bool {
	deadline := time.Now().Add(reserveWait)
	for {
		switch d.s.guard.begin(ip, user) {
		case attemptReserved:
			return true
		case attemptBanned:
			return false
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-d.s.closed:
			return false
		}
	}
}

// checkPassword compares pass with user's bcrypt hash (a dummy hash of the
// same cost for unknown users), holding one of the bcrypt slots.
func (d driver) checkPassword(user, pass string) bool {
	s := d.s
	select {
	case s.bcryptSlots <- struct{}{}:
	case <-s.closed:
		return false
	}
	defer func() { <-s.bcryptSlots }()
	s.passwordChecks.Add(1)
	hash, known := s.users[user]
	if !known {
		hash = s.dummyHash
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(pass)) == nil && known
}

// delay slows down password guessing; Close cuts it short.
func (d driver) delay() {
	if d.s.opts.FailedLoginDelay <= 0 {
		return
	}
	t := time.NewTimer(d.s.opts.FailedLoginDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-d.s.closed:
	}
}

// GetTLSConfig returns the one cached config, so data connections can resume
// the control connection's TLS session.
func (d driver) GetTLSConfig() (*tls.Config, error) {
	if d.s.tlsConfig == nil {
		return nil, errTLSOff
	}
	return d.s.tlsConfig, nil
}

// WrapPassiveListener adds the data-connection idle timeout, which
// ftpserverlib lacks (its IdleTimeout only covers the control connection),
// and marks data connections the library closes (see idleConn.closed).
func (d driver) WrapPassiveListener(l net.Listener) (net.Listener, error) {
	return &idleListener{Listener: l, idle: max(d.s.opts.IdleTimeout, 0)}, nil
}

// hostOf returns the IP of a TCP address, as the key for bans and limits.
func hostOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
