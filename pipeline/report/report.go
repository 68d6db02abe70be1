package report

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"campaignd"
)

// Timer kinds registered by the Reporter.
const (
	// ReportTimerKind fires once per day D, at report.time on D+1, and
	// produces D's report; its id is D as YYYYMMDD.
	ReportTimerKind = "report"
	// ReportPushTimerKind fires a push attempt; its id is
	// "<YYYYMMDD>@<unix ms of the attempt>", so a superseded attempt is
	// recognised and ignored.
	ReportPushTimerKind = "report-push"
)

// Report push results given to Events.ReportPushed (the label values
// of campaignd_report_pushes_total).
const (
	ReportPushOK    = "ok"
	ReportPushError = "error"
)

// Push retry backoff: 1 min doubling to 1 h, until a push succeeds.
const (
	reportPushMinBackoff = time.Minute
	reportPushMaxBackoff = time.Hour
)

// Store is what the Reporter needs from the store: the settled-day
// index and each produced day's report with its push state.
type Store interface {
	ReportSource
	// Report returns the report of day (YYYYMMDD), ENOTFOUND if the day has
	// not been produced.
	Report(day string) (*campaignd.Report, error)
	SaveReport(r *campaignd.Report) error
	// Reports returns produced reports newest first, at most limit (0: all).
	Reports(limit int) ([]*campaignd.Report, error)
	Audit(e campaignd.AuditEntry) error
}

// Pusher uploads a report file to Payback. Push must not leave a partial
// file under name on the remote side, and returns an error to be retried.
type Pusher interface {
	Push(ctx context.Context, name string, r io.Reader, size int64) error
}

// Timers is the part of the durable timing wheel the Reporter uses. Handle
// is called before the wheel starts; a handler returning nil deletes the
// timer, an error retries it later. Schedule adds or moves a timer.
type Timers interface {
	Handle(kind string, fn func(ctx context.Context, id string, due time.Time) error)
	Schedule(kind, id string, due time.Time) error
}

// Events receives the Reporter's countable events (metrics).
type Events interface {
	// ReportPushed reports a push attempt of a day's report: ReportPushOK or
	// ReportPushError, and when.
	ReportPushed(result string, at time.Time)
}

// Options configure a Reporter. Zero values get the defaults given.
type Options struct {
	Store  Store
	Timers Timers
	// Dir is the archive, DATA_DIR/reports; created if missing.
	Dir string
	// FileName is report.file_name; {date} becomes YYYYMMDD. Default
	// "report_{date}.csv".
	FileName string
	// Location is the time zone of the days and time stamps; it must be the
	// one the engine indexes settled messages by. Default time.Local.
	Location *time.Location
	// Time is report.time, "HH:MM" local: when day D's report is produced on
	// D+1. Default "01:00".
	Time string
	// Pusher uploads reports; nil keeps them locally only.
	Pusher Pusher
	// CatchUpDays bounds how far back start-up looks for days missed while
	// the process was down. Default 31.
	CatchUpDays int
	Now         func() time.Time
	Logger      *slog.Logger
	Events      Events
}

// Reporter produces the daily delivery report (SPEC §6), archives it and
// pushes it, retrying until the push succeeds. Each day is produced once;
// its state lives in the store.
//
// Choices where the specification is silent:
//
//   - A message the SMSC never accepted (REJECTD at submit) has no
//     acceptance time; its Time Stamp is when it was settled. Time stamps
//     are truncated to the millisecond (the store keeps milliseconds).
//   - Fields are quoted only when needed (encoding/csv); a leading space
//     also quotes a field.
//   - A day is produced once, when its "report" timer fires or on demand
//     after report.time of the next day; producing means writing the
//     archive atomically and then recording it, so a crash in between
//     produces the same bytes again. A message settled into a day after
//     its report was produced (only possible around midnight, which is why
//     report.time is 01:00) is in no report; if the archive is lost it is
//     written again from the store and a changed hash is logged.
//   - Missed days: at start-up, every day after the last produced one, at
//     most CatchUpDays back, is produced, empty days included (Payback gets
//     one file a day). On a first start (no report at all) only days with
//     settled messages are, so a new install does not push a month of empty
//     files.
//   - The current day (and the previous one before report.time) is
//     partial: generated on demand, never archived nor recorded, marked
//     Partial, and pushed under "<name>-partial<ext>" so that Payback cannot
//     take it for the day's report. Partial pushes are not counted in the
//     push metrics, which are about daily reports.
//   - "Push again" of a pushed report restarts its attempt count; a failed
//     manual push schedules retries like an automatic one. Each push is
//     recorded in the audit log with the user and address.
//   - Retries: 1 min after the first failure, doubling to 1 h, forever.
//     The next attempt is in the report's state; a timer whose id no longer
//     matches it (superseded by a manual push) does nothing.
type Reporter struct {
	store    Store
	timers   Timers
	pusher   Pusher
	events   Events
	log      *slog.Logger
	now      func() time.Time
	loc      *time.Location
	dir      string
	fileName string
	at       time.Duration // report.time as an offset from local midnight
	catchUp  int

	mu     sync.Mutex // serialises production and report state writes
	pushMu sync.Mutex // one push at a time
}

type nopEvents struct{}

func (nopEvents) ReportPushed(string, time.Time) {}

// NewReporter checks o, fills defaults, creates the archive directory and
// registers the Reporter's timer handlers: call it before the wheel starts.
func NewReporter(o Options) (*Reporter, error) {
	if o.Store == nil || o.Timers == nil {
		return nil, errors.New("report: Store and Timers are required")
	}
	if o.Dir == "" {
		return nil, errors.New("report: Dir is required")
	}
	if o.FileName == "" {
		o.FileName = "report_{date}.csv"
	}
	if strings.ContainsAny(o.FileName, `/\`) || strings.HasPrefix(o.FileName, ".") {
		return nil, fmt.Errorf("report: file name %q must be a plain file name", o.FileName)
	}
	if o.Time == "" {
		o.Time = "01:00"
	}
	hm, err := time.Parse("15:04", o.Time)
	if err != nil {
		return nil, fmt.Errorf("report: time %q is not HH:MM", o.Time)
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.CatchUpDays <= 0 {
		o.CatchUpDays = 31
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Events == nil {
		o.Events = nopEvents{}
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("report: archive dir: %w", err)
	}
	r := &Reporter{
		store: o.Store, timers: o.Timers, pusher: o.Pusher, events: o.Events,
		log: o.Logger.With("system", "report"), now: o.Now, loc: o.Location,
		dir: o.Dir, fileName: o.FileName, catchUp: o.CatchUpDays,
		at: time.Duration(hm.Hour())*time.Hour + time.Duration(hm.Minute())*time.Minute,
	}
	r.timers.Handle(ReportTimerKind, r.onReportTimer)
	r.timers.Handle(ReportPushTimerKind, r.onPushTimer)
	return r, nil
}

// Start schedules the next daily report, and the reports of days missed
// while the process was down (at most CatchUpDays back, only days after the
// last produced one; on a first start only days that have settled
// messages), and re-arms pushes still pending. It is idempotent: timers are
// upserts and a produced day is never produced again.
func (r *Reporter) Start(ctx context.Context) error {
	now := r.now()
	today := r.dayOf(now)
	from := today.AddDate(0, 0, -r.catchUp)
	last, err := r.store.Reports(1)
	if err != nil {
		return fmt.Errorf("report: start: %w", err)
	}
	first := len(last) == 0
	if !first {
		l, err := r.parseDay(last[0].Day)
		if err != nil {
			return fmt.Errorf("report: start: last report: %w", err)
		}
		if next := l.AddDate(0, 0, 1); next.After(from) {
			from = next
		} else if from.After(next) {
			r.log.Warn("report: days missed beyond the catch-up window are not produced",
				logFrom, reportDayText(next), logTo, reportDayText(from.AddDate(0, 0, -1)))
		}
	}
	for d := from; !d.After(today); d = d.AddDate(0, 0, 1) {
		due := r.productionTime(d)
		if !due.After(now) {
			if first {
				if ok, err := r.hasSettled(d); err != nil {
					return fmt.Errorf("report: start: %w", err)
				} else if !ok {
					continue
				}
			}
			r.log.Info("report: day missed, producing it now", logDay, reportDayText(d))
		}
		if err := r.timers.Schedule(ReportTimerKind, reportDayKey(d), due); err != nil {
			return fmt.Errorf("report: schedule %s: %w", reportDayText(d), err)
		}
	}
	if r.pusher == nil {
		return nil
	}
	recent, err := r.store.Reports(r.catchUp)
	if err != nil {
		return fmt.Errorf("report: start: %w", err)
	}
	for _, rep := range recent {
		if rep.PushState == campaignd.PushPending || rep.PushState == campaignd.PushFailed {
			d, err := r.parseDay(rep.Day)
			if err != nil {
				continue
			}
			if err := r.timers.Schedule(ReportPushTimerKind, reportPushTimerID(d, rep.NextAttempt), rep.NextAttempt); err != nil {
				return fmt.Errorf("report: schedule push of %s: %w", rep.Day, err)
			}
		}
	}
	return nil
}

// Reports returns every produced day's report with its push state, newest
// first. The current day is not listed: it has no report until it ends.
func (r *Reporter) Reports(ctx context.Context) ([]*campaignd.Report, error) {
	return r.store.Reports(0)
}

// ReportCSV writes the report of day ("YYYY-MM-DD") to w and returns its
// description. A produced day is served from the archive. The current day,
// and the previous one before report.time, are generated on the fly and
// marked Partial: they are not the day's report, which is still produced
// after the day ends. A past day never produced (missed beyond the
// catch-up window) is produced now.
func (r *Reporter) ReportCSV(ctx context.Context, day string, w io.Writer) (*campaignd.Report, error) {
	d, err := r.parseDay(day)
	if err != nil {
		return nil, err
	}
	now := r.now()
	if d.After(r.dayOf(now)) {
		return nil, campaignd.Errorf(campaignd.ENOTFOUND, "No report for %s: the day has not come.", day)
	}
	rep, err := r.store.Report(reportDayKey(d))
	if campaignd.ErrorCode(err) == campaignd.ENOTFOUND {
		if now.Before(r.productionTime(d)) {
			return r.partial(ctx, d, now, w)
		}
		rep, err = r.produce(ctx, d)
	}
	if err != nil {
		return nil, err
	}
	f, err := r.openArchive(ctx, rep)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return nil, fmt.Errorf("report: send %s: %w", rep.FileName, err)
	}
	return rep, nil
}

// PushReport pushes the report of day ("YYYY-MM-DD") now, on an operator's
// request, and records who asked in the audit log. A produced day's push
// state is updated (a failure schedules retries as usual). The current day
// is pushed as a partial report, under the file name with "-partial" before
// the extension so that it cannot be taken for the day's report; it is not
// recorded. The returned error is the push's only when nothing could be
// attempted; a failed attempt is reported in the Report's PushState and
// LastError.
func (r *Reporter) PushReport(ctx context.Context, day, user, remoteAddr string) (*campaignd.Report, error) {
	if r.pusher == nil {
		return nil, campaignd.Errorf(campaignd.EINVALID, "No report FTP server is configured (report.ftp_url); reports are kept locally.")
	}
	d, err := r.parseDay(day)
	if err != nil {
		return nil, err
	}
	now := r.now()
	if d.After(r.dayOf(now)) {
		return nil, campaignd.Errorf(campaignd.ENOTFOUND, "No report for %s: the day has not come.", day)
	}
	var rep *campaignd.Report
	_, err = r.store.Report(reportDayKey(d))
	if campaignd.ErrorCode(err) == campaignd.ENOTFOUND && now.Before(r.productionTime(d)) {
		rep, err = r.pushPartial(ctx, d, now)
	} else if err == nil || campaignd.ErrorCode(err) == campaignd.ENOTFOUND {
		if _, err = r.produce(ctx, d); err == nil {
			rep, err = r.push(ctx, d, true)
		}
	}
	if err != nil {
		return nil, err
	}
	detail := fmt.Sprintf("%s %s: %s", rep.FileName, day, rep.PushState)
	if rep.LastError != "" {
		detail += " (" + rep.LastError + ")"
	}
	if err := r.store.Audit(campaignd.AuditEntry{At: now, User: user, RemoteAddr: remoteAddr, Action: "push_report", Detail: detail}); err != nil {
		r.log.Error("report: audit push", logDay, day, slog.Any(logError, err))
	}
	return rep, nil
}

// onReportTimer produces day id's report, then schedules the next day's.
func (r *Reporter) onReportTimer(ctx context.Context, id string, due time.Time) error {
	d, err := time.ParseInLocation("20060102", id, r.loc)
	if err != nil {
		r.log.Error("report: bad timer id, dropped", logID, id)
		return nil
	}
	if _, err := r.produce(ctx, d); err != nil {
		r.log.Error("report: produce failed, will retry", logDay, reportDayText(d), slog.Any(logError, err))
		return err
	}
	next := d.AddDate(0, 0, 1)
	return r.timers.Schedule(ReportTimerKind, reportDayKey(next), r.productionTime(next))
}

// onPushTimer makes one push attempt, unless the day was pushed meanwhile
// or the timer was superseded by a later attempt. A failed attempt
// schedules the next one itself, so the timer is always done.
func (r *Reporter) onPushTimer(ctx context.Context, id string, due time.Time) error {
	day, _, _ := strings.Cut(id, "@")
	d, err := time.ParseInLocation("20060102", day, r.loc)
	if err != nil || r.pusher == nil {
		return nil
	}
	rep, err := r.store.Report(day)
	if campaignd.ErrorCode(err) == campaignd.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	if !reportPushWanted(rep) || reportPushTimerID(d, rep.NextAttempt) != id {
		return nil
	}
	_, err = r.push(ctx, d, false)
	return err
}

func reportPushWanted(rep *campaignd.Report) bool {
	return rep.PushState == campaignd.PushPending || rep.PushState == campaignd.PushFailed
}

// produce writes day d's report to the archive and records it, unless it
// was produced before; it returns the recorded report.
func (r *Reporter) produce(ctx context.Context, d time.Time) (*campaignd.Report, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep, err := r.store.Report(reportDayKey(d))
	if err == nil {
		return rep, nil
	} else if campaignd.ErrorCode(err) != campaignd.ENOTFOUND {
		return nil, err
	}
	rep = &campaignd.Report{Day: reportDayText(d), FileName: r.nameFor(d)}
	if err := r.writeArchive(ctx, d, rep); err != nil {
		return nil, err
	}
	now := r.now()
	rep.ProducedAt = now
	rep.PushState = campaignd.PushNone
	if r.pusher != nil {
		rep.PushState = campaignd.PushPending
		rep.NextAttempt = now.Truncate(time.Millisecond)
	}
	if err := r.store.SaveReport(rep); err != nil {
		return nil, fmt.Errorf("report: record %s: %w", rep.Day, err)
	}
	r.log.Info("report: produced", logDay, rep.Day, logFile, rep.FileName, logRows, rep.Rows, logBytes, rep.Bytes, logSHA256, rep.SHA256)
	if r.pusher != nil {
		if err := r.timers.Schedule(ReportPushTimerKind, reportPushTimerID(d, rep.NextAttempt), rep.NextAttempt); err != nil {
			// Start re-arms pending pushes, and the report is recorded.
			r.log.Error("report: schedule push", logDay, rep.Day, slog.Any(logError, err))
		}
	}
	return rep, nil
}

// writeArchive writes d's report to Dir/<file name> atomically and fills
// rep's rows, bytes and sha256.
func (r *Reporter) writeArchive(ctx context.Context, d time.Time, rep *campaignd.Report) error {
	err := writeReportFile(filepath.Join(r.dir, rep.FileName), func(w io.Writer) error {
		out := newReportOutput(w)
		rows, err := WriteReport(ctx, out, r.store, reportDayKey(d), r.loc)
		rep.Rows, rep.Bytes, rep.SHA256 = rows, out.bytes, out.sum()
		return err
	})
	if err != nil {
		return fmt.Errorf("report: write %s: %w", rep.FileName, err)
	}
	return nil
}

// openArchive opens rep's archived file, writing it again if it is missing
// (same bytes, unless messages were settled into the day after it was
// produced, which is logged).
func (r *Reporter) openArchive(ctx context.Context, rep *campaignd.Report) (*os.File, error) {
	path := filepath.Join(r.dir, rep.FileName)
	f, err := os.Open(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return f, err
	}
	d, err := r.parseDay(rep.Day)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	again := *rep
	if err := r.writeArchive(ctx, d, &again); err != nil {
		return nil, err
	}
	if again.SHA256 != rep.SHA256 {
		r.log.Warn("report: archive was missing and regenerates differently", logDay, rep.Day, logRows, again.Rows, logWasRows, rep.Rows)
	} else {
		r.log.Warn("report: archive was missing, written again", logDay, rep.Day, logFile, rep.FileName)
	}
	return os.Open(path)
}

// push makes one push attempt of d's produced report and records the
// outcome; a failure schedules the next attempt with backoff. manual
// restarts the attempt count of a report already pushed.
func (r *Reporter) push(ctx context.Context, d time.Time, manual bool) (*campaignd.Report, error) {
	r.pushMu.Lock()
	defer r.pushMu.Unlock()
	rep, err := r.store.Report(reportDayKey(d))
	if err != nil {
		return nil, err
	}
	if !manual && !reportPushWanted(rep) {
		return rep, nil
	}
	pushErr := r.pushArchive(ctx, rep)
	r.mu.Lock()
	defer r.mu.Unlock()
	if rep, err = r.store.Report(reportDayKey(d)); err != nil {
		return nil, err
	}
	if manual && rep.PushState == campaignd.PushDone {
		rep.Attempts = 0
	}
	now := r.now()
	rep.Attempts++
	if pushErr == nil {
		rep.PushState, rep.PushedAt, rep.LastError, rep.NextAttempt = campaignd.PushDone, now, "", time.Time{}
		r.log.Info("report: pushed", logDay, rep.Day, logFile, rep.FileName, logAttempts, rep.Attempts)
		r.events.ReportPushed(ReportPushOK, now)
	} else {
		rep.PushState, rep.LastError = campaignd.PushFailed, pushErr.Error()
		rep.NextAttempt = now.Add(reportPushBackoff(rep.Attempts)).Truncate(time.Millisecond)
		r.log.Warn("report: push failed, will retry", logDay, rep.Day, logFile, rep.FileName,
			logAttempts, rep.Attempts, logNextAttempt, rep.NextAttempt, slog.Any(logError, pushErr))
		r.events.ReportPushed(ReportPushError, now)
	}
	if err := r.store.SaveReport(rep); err != nil {
		return nil, fmt.Errorf("report: record push of %s: %w", rep.Day, err)
	}
	if pushErr != nil {
		if err := r.timers.Schedule(ReportPushTimerKind, reportPushTimerID(d, rep.NextAttempt), rep.NextAttempt); err != nil {
			return nil, fmt.Errorf("report: schedule push of %s: %w", rep.Day, err)
		}
	}
	return rep, nil
}

func (r *Reporter) pushArchive(ctx context.Context, rep *campaignd.Report) error {
	f, err := r.openArchive(ctx, rep)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return r.pusher.Push(ctx, rep.FileName, f, fi.Size())
}

// partial streams day d's report as it stands to w.
func (r *Reporter) partial(ctx context.Context, d, now time.Time, w io.Writer) (*campaignd.Report, error) {
	out := newReportOutput(w)
	rows, err := WriteReport(ctx, out, r.store, reportDayKey(d), r.loc)
	if err != nil {
		return nil, fmt.Errorf("report: partial %s: %w", reportDayText(d), err)
	}
	return &campaignd.Report{Day: reportDayText(d), FileName: r.partialName(d), Rows: rows, Bytes: out.bytes,
		SHA256: out.sum(), ProducedAt: now, Partial: true}, nil
}

// pushPartial writes day d's report as it stands to a temporary file and
// pushes it under the partial name. Nothing is recorded.
func (r *Reporter) pushPartial(ctx context.Context, d, now time.Time) (*campaignd.Report, error) {
	f, err := os.CreateTemp(r.dir, ".partial-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("report: partial %s: %w", reportDayText(d), err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	rep, err := r.partial(ctx, d, now, f)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	r.pushMu.Lock()
	err = r.pusher.Push(ctx, rep.FileName, f, rep.Bytes)
	r.pushMu.Unlock()
	rep.Attempts = 1
	if err != nil {
		rep.PushState, rep.LastError = campaignd.PushFailed, err.Error()
		r.log.Warn("report: partial push failed", logDay, rep.Day, logFile, rep.FileName, slog.Any(logError, err))
	} else {
		rep.PushState, rep.PushedAt = campaignd.PushDone, r.now()
		r.log.Info("report: partial pushed", logDay, rep.Day, logFile, rep.FileName, logRows, rep.Rows)
	}
	return rep, nil
}

// hasSettled reports whether any message was settled on d.
func (r *Reporter) hasSettled(d time.Time) (bool, error) {
	found := errors.New("found")
	err := r.store.ReportMessages(reportDayKey(d), func(*campaignd.Message) error { return found })
	if errors.Is(err, found) {
		return true, nil
	}
	return false, err
}

// reportPushBackoff is the wait after the n-th failed attempt: 1 min
// doubling, at most 1 h.
func reportPushBackoff(n int) time.Duration {
	d := reportPushMinBackoff
	for i := 1; i < n && d < reportPushMaxBackoff; i++ {
		d *= 2
	}
	return min(d, reportPushMaxBackoff)
}

func reportPushTimerID(d, at time.Time) string {
	return reportDayKey(d) + "@" + strconv.FormatInt(at.UnixMilli(), 10)
}

// productionTime is when day d's report is produced: report.time on d+1.
func (r *Reporter) productionTime(d time.Time) time.Time {
	next := time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, r.loc)
	return time.Date(next.Year(), next.Month(), next.Day(), int(r.at/time.Hour), int(r.at%time.Hour/time.Minute), 0, 0, r.loc)
}

// dayOf returns the local midnight starting t's day.
func (r *Reporter) dayOf(t time.Time) time.Time {
	t = t.In(r.loc)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, r.loc)
}

// parseDay parses "YYYY-MM-DD" (API form) into local midnight.
func (r *Reporter) parseDay(day string) (time.Time, error) {
	d, err := time.ParseInLocation("2006-01-02", day, r.loc)
	if err != nil {
		return time.Time{}, campaignd.Errorf(campaignd.EINVALID, "Invalid day %q: use YYYY-MM-DD.", day)
	}
	return d, nil
}

// nameFor is report.file_name with {date} replaced by YYYYMMDD.
func (r *Reporter) nameFor(d time.Time) string {
	return strings.ReplaceAll(r.fileName, "{date}", reportDayKey(d))
}

// partialName marks a current-day report's name: report_20261121-partial.csv.
func (r *Reporter) partialName(d time.Time) string {
	name := r.nameFor(d)
	ext := filepath.Ext(name)
	return strings.TrimSuffix(name, ext) + "-partial" + ext
}

func reportDayKey(d time.Time) string  { return d.Format("20060102") }
func reportDayText(d time.Time) string { return d.Format("2006-01-02") }
