package replies

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"campaignd"
	"campaignd/pipeline/ingest"
)

// DefaultOptoutKeywords are optout.keywords when none are configured.
var DefaultOptoutKeywords = []string{"BAJA", "STOP", "ALTO", "CANCELAR", "NO MAS"}

// MO results, as passed to Events.MOReceived.
const (
	MOKeyword = "keyword"
	MOOther   = "other"
)

// Store is what the replies handler needs from the store.
type Store interface {
	SaveReply(m *campaignd.MO, s *campaignd.Suppression) (added bool, err error)
	Audit(e campaignd.AuditEntry) error
}

// Events receives the replies' metrics (package metrics has them).
type Events interface {
	MOReceived(result string)
	SuppressionChanged(change, reason string, n int)
}

// Sender submits the confirmation SMS (*smpp.Client).
type Sender interface {
	Submit(ctx context.Context, m campaignd.OutMessage) (ids []string, err error)
}

// Options configure a Replies handler.
type Options struct {
	Store Store // required
	// Keywords are optout.keywords; nil: DefaultOptoutKeywords. An empty,
	// non-nil list turns keyword matching off (replies are still kept).
	Keywords []string
	// ConfirmText, when set, is sent once to a number a reply has just put
	// on the list, from ConfirmSource, through Sender.
	ConfirmText   string
	ConfirmSource string
	Sender        Sender
	// Countries are the allowed countries besides Mexico (ingest's rule):
	// a sender number is normalised as a recipient would be.
	Countries []string
	Now       func() time.Time
	Logger    *slog.Logger
	Events    Events // nil: none
}

// Replies handles mobile-originated messages (SPEC §11): every reply is
// kept; one whose first word(s) are an opt-out keyword puts its sender on
// the suppression list, in the same transaction, and the optional
// confirmation is sent back once.
type Replies struct {
	o     Options
	rules *ingest.NumberRules
	log   *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewReplies returns a handler; Close waits for confirmations in flight.
func NewReplies(o Options) *Replies {
	if o.Keywords == nil {
		o.Keywords = DefaultOptoutKeywords
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Replies{o: o, rules: ingest.NewNumberRules(o.Countries), log: o.Logger.With("system", "replies")}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Incoming is one reply as the SMSC delivered it.
type Incoming struct {
	From, To, Text string
}

// Handle keeps the reply and applies its keyword. It returns once both are
// durable: only then may the SMSC be told the reply was received. An error
// means nothing was kept and the SMSC should deliver it again.
func (r *Replies) Handle(in Incoming) (*campaignd.MO, error) {
	m := &campaignd.MO{From: in.From, To: in.To, Text: in.Text, At: r.o.Now()}
	number, nerr := r.rules.Normalize(in.From)
	if nerr != nil && in.From != "" && in.From[0] != '+' {
		// An SMSC writes international numbers without the '+' (TON 1):
		// a number of an allowed country is read with it.
		if n, err := r.rules.Normalize("+" + in.From); err == nil {
			number, nerr = n, nil
		}
	}
	if nerr == nil {
		m.From = number
	}
	m.Keyword = MatchKeyword(in.Text, r.o.Keywords)
	var s *campaignd.Suppression
	if m.Keyword != "" && nerr == nil {
		s = &campaignd.Suppression{Number: number, Reason: campaignd.SuppressReply, Source: in.Text, At: m.At, By: "sms"}
	}
	added, err := r.o.Store.SaveReply(m, s)
	if err != nil {
		return nil, err
	}
	result := MOOther
	if m.Keyword != "" {
		result = MOKeyword
	}
	if r.o.Events != nil {
		r.o.Events.MOReceived(result)
	}
	log := r.log.With(slog.Uint64("mo_id", m.ID), slog.String("from", m.From), slog.String("keyword", m.Keyword))
	switch {
	case m.Keyword != "" && nerr != nil:
		log.Warn("opt-out reply from a number that is not valid; kept, not suppressed", slog.String("text", in.Text))
	case added:
		log.Info("number opted out by reply")
		if err := r.o.Store.Audit(campaignd.AuditEntry{At: m.At, User: "sms", Action: "suppress",
			Detail: number + " (reply: " + in.Text + ")"}); err != nil {
			log.Error("audit opt-out", slog.Any(logError, err))
		}
		if r.o.Events != nil {
			r.o.Events.SuppressionChanged("added", campaignd.SuppressReply, 1)
		}
		r.confirm(number)
	case s != nil:
		log.Info("opt-out reply from a number already on the list")
	default:
		log.Info("reply received")
	}
	return m, nil
}

// confirm sends optout.confirm_text to number in the background: the
// reply's deliver_sm_resp must not wait for a submit (on a transceiver the
// submit's response is read by the same reader). Not retried: one attempt,
// logged.
func (r *Replies) confirm(number string) {
	if r.o.ConfirmText == "" || r.o.Sender == nil {
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ctx, cancel := context.WithTimeout(r.ctx, time.Minute)
		defer cancel()
		_, err := r.o.Sender.Submit(ctx, campaignd.OutMessage{Source: r.o.ConfirmSource, Dest: number, Text: r.o.ConfirmText, NoReceipt: true})
		if err != nil {
			r.log.Warn("opt-out confirmation not sent", slog.String("to", number), slog.Any(logError, err))
			return
		}
		r.log.Info("opt-out confirmation sent", slog.String("to", number))
	}()
}

// Close stops confirmations waiting for a bind and waits for the others.
func (r *Replies) Close() {
	r.cancel()
	r.wg.Wait()
}
