package campaignd

import "time"

// AuditEntry records one operator action: who, when, what, from where.
type AuditEntry struct {
	At          time.Time `json:"at"`
	User        string    `json:"user"`
	RemoteAddr  string    `json:"remote_addr"`
	BroadcastID uint64    `json:"broadcast_id,omitempty"`
	Action      string    `json:"action"`
	Detail      string    `json:"detail,omitempty"`
}

// Role is a web user's role.
type Role string

// Roles: admin may do everything, operator may act on broadcasts, viewer
// may only read.
const (
	RoleAdmin    Role = "admin"
	RoleOperator Role = "operator"
	RoleViewer   Role = "viewer"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleOperator || r == RoleViewer }

// CanAct reports whether the role may act on broadcasts and reports.
func (r Role) CanAct() bool { return r == RoleAdmin || r == RoleOperator }

// AuditQuery selects audit entries: of one broadcast (BroadcastID > 0), of
// one user, at or after From and before To (zero: unbounded); a page of
// Limit from Offset, newest first.
type AuditQuery struct {
	BroadcastID uint64
	User        string
	From, To    time.Time
	Offset      int
	Limit       int
}
