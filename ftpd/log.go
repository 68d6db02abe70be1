package ftpd

import (
	"context"
	"log/slog"
)

// Log keys, snake_case, shared by every log line of the package.
const (
	keySystem     = "system"
	keyComponent  = "component"
	keyAddr       = "addr"
	keyTLSMode    = "tls_mode"
	keyRoot       = "root"
	keyError      = "error"
	keySessionID  = "session_id"
	keyRemoteAddr = "remote_addr"
	keyUser       = "user"
	keyPath       = "path"
	keyFrom       = "from"
	keySize       = "size"
	keyMaxBytes   = "max_bytes"
	keySHA256     = "sha256"
	keyVia        = "via"
	keyResult     = "result"
	keyDurationMS = "duration_ms"
	keyReason     = "reason"
	keyStored     = "stored"
)

// warnOnly passes only warnings and errors to the wrapped handler. It is
// given to ftpserverlib, whose Info and Debug lines (every connection,
// every command) would drown ours.
type warnOnly struct{ slog.Handler }

func (h warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}

func (h warnOnly) WithAttrs(attrs []slog.Attr) slog.Handler {
	return warnOnly{h.Handler.WithAttrs(attrs)}
}

func (h warnOnly) WithGroup(name string) slog.Handler {
	return warnOnly{h.Handler.WithGroup(name)}
}
