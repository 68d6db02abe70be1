package main

import (
	"campaignd"
	"campaignd/ftpd"
	"campaignd/pipeline/engine"
	"campaignd/pipeline/ingest"
	"campaignd/pipeline/replies"
	"campaignd/pipeline/report"
	"campaignd/pipeline/wheel"
	"campaignd/smpp"
	"campaignd/store"
)

// Store is everything the program needs of a store engine: the small
// interfaces the pipeline packages declare, in the root's words, and what the
// console and the API read. Every engine ([store] engine = "badger" or
// "postgres") implements it.
type Store interface {
	wheel.TimerStore
	engine.Store
	engine.SuppressionChecker
	ingest.Store
	ingest.SuppressionViewer
	replies.Store
	report.Store
	ConsoleStore
	ActionQueue
	Ping() error
	Close() error
}

// ActionQueue relays requests to the leader of a cluster (cluster.go).
type ActionQueue interface {
	QueueAction(a store.Action) (string, error)
	PendingActions(limit int) ([]string, error)
	TakeAction(id string) (*store.Action, error)
	CancelAction(id string) (bool, error)
	FinishAction(r store.ActionResult) error
	ActionResult(id string) (*store.ActionResult, error)
}

// ConsoleStore is what the console, the API and the opt-out commands read
// and write directly.
type ConsoleStore interface {
	Audit(e campaignd.AuditEntry) error
	AuditLog(bid uint64) ([]campaignd.AuditEntry, error)
	AuditSearch(q campaignd.AuditQuery) ([]campaignd.AuditEntry, int, error)
	RecentAudit(bid uint64, limit int) ([]campaignd.AuditEntry, error)
	Broadcast(id uint64) (*campaignd.Broadcast, error)
	Broadcasts(f campaignd.BroadcastFilter) ([]*campaignd.Broadcast, int, error)
	UpdateBroadcast(id uint64, fn func(*campaignd.Broadcast) error) (*campaignd.Broadcast, error)
	Messages(bid uint64, from uint32, fn func(*campaignd.Message) error) error
	CreateUpload(u *campaignd.Upload) (*campaignd.Job, error)
	RejectUpload(u *campaignd.Upload) error
	Upload(id uint64) (*campaignd.Upload, error)
	Uploads(offset, limit int) ([]*campaignd.Upload, int, error)
	UploadErrors(id uint64, offset, limit int) (*campaignd.Upload, int, error)
	UploadSummary(id uint64, maxErrors int) (*campaignd.Upload, error)
	UploadsPage(offset, limit, maxErrors int) ([]*campaignd.Upload, int, error)
	Jobs() ([]*campaignd.Job, error)
	MOs(before uint64, limit int) ([]campaignd.MO, uint64, error)
	Session(id string) (*campaignd.Session, error)
	SaveSession(s *campaignd.Session) error
	DeleteSession(id string) error
	UserPref(user, key string) (string, error)
	SetUserPref(user, key, value string) error
	SuppressMany(ss []campaignd.Suppression) (added int, err error)
	Suppressed(number string) (*campaignd.Suppression, error)
	SuppressionCount() (int, error)
	Suppressions(prefix, after string, limit int) ([]campaignd.Suppression, string, error)
	Unsuppress(number string) (*campaignd.Suppression, error)
}

// The engines and adapters implement the interfaces; these lines check it at
// compile time, in the one package that knows them all.
var (
	_ Store          = (*store.DB)(nil)
	_ engine.Sender  = (*smpp.Client)(nil)
	_ smpp.Receiver  = (*engine.Engine)(nil)
	_ replies.Sender = (*smpp.Client)(nil)
	_ report.Pusher  = (*ftpd.Pusher)(nil)
)
