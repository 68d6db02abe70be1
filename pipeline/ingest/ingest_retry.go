package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"time"

	"campaignd"
)

// maxRetryPause caps the pause between two attempts of a job.
const maxRetryPause = time.Hour

// Attempt runs a job once, within its retry policy, so that every job ends:
//
//   - a job not yet due (its RetryAt is ahead) is not run; Attempt returns
//     its due time;
//   - the attempt is counted durably before the run, so a run that kills
//     the process (out of memory, kill -9) counts too;
//   - a failure that will not change — the file is gone, its name cannot be
//     used, a record the store refuses for its size — rejects the upload at
//     once with the reason;
//   - any other failure (disk, store) is retried after a pause that doubles
//     from RetryBase, and after MaxAttempts attempts the upload is rejected
//     with the last error.
//
// A rejected upload is moved to rejected/ with its errors file when
// possible; its record always says why. Attempt returns the broadcast made,
// if any, and when the job should be tried again (zero: it has ended). err
// is the failure of this attempt, for the log; a job with a zero retry time
// needs nothing more.
func (in *Ingester) Attempt(ctx context.Context, job *campaignd.Job) (*campaignd.Broadcast, time.Time, error) {
	now := in.o.Now()
	if job.Attempts >= in.o.MaxAttempts {
		return in.end(job, nil, fmt.Sprintf("ingest failed %d times; last error: %s", job.Attempts, job.LastError))
	}
	if job.RetryAt.After(now) {
		return nil, job.RetryAt, nil
	}
	job.Attempts++
	job.RetryAt = now.Add(in.retryPause(job.Attempts))
	if err := in.db.SaveJob(job); err != nil {
		job.Attempts--
		return nil, job.RetryAt, err
	}
	b, err := in.Run(ctx, job)
	if err == nil {
		return b, time.Time{}, nil
	}
	if ctx.Err() != nil {
		// Shutting down is not a failure of the job: give the attempt back.
		job.Attempts--
		job.RetryAt = time.Time{}
		if serr := in.db.SaveJob(job); serr != nil {
			in.logger.Warn("saving an interrupted job failed", slog.Uint64(ingestKeyUpload, job.Upload.ID), slog.Any(ingestKeyError, serr))
		}
		return nil, time.Time{}, err
	}
	if reason := in.lastingReason(err); reason != "" {
		return in.end(job, err, reason)
	}
	job.LastError = err.Error()
	if job.Attempts >= in.o.MaxAttempts {
		return in.end(job, err, fmt.Sprintf("ingest failed %d times; last error: %s", job.Attempts, job.LastError))
	}
	if serr := in.db.SaveJob(job); serr != nil {
		err = errors.Join(err, serr)
	}
	in.o.Events.IngestRetry()
	in.logger.Warn("ingest failed; will retry", slog.Uint64(ingestKeyUpload, job.Upload.ID),
		slog.String(ingestKeyFile, job.Upload.FileName), slog.Int("attempt", job.Attempts),
		slog.Int("max_attempts", in.o.MaxAttempts), slog.Time("retry_at", job.RetryAt), slog.Any(ingestKeyError, err))
	return nil, job.RetryAt, err
}

// end rejects the upload of job with reason. If the rejection itself cannot
// be recorded (the store failing), the job stays and is due again after a
// pause, so an acknowledged upload never goes silent.
func (in *Ingester) end(job *campaignd.Job, err error, reason string) (*campaignd.Broadcast, time.Time, error) {
	gerr := in.giveUp(job, reason)
	if gerr == nil {
		return nil, time.Time{}, err
	}
	return nil, in.o.Now().Add(in.retryPause(max(job.Attempts, 1))), errors.Join(err, gerr)
}

// retryPause is the pause after the n-th failed attempt: RetryBase doubled
// n-1 times, at most an hour.
func (in *Ingester) retryPause(n int) time.Duration {
	d := in.o.RetryBase
	for i := 1; i < n && d < maxRetryPause; i++ {
		d *= 2
	}
	return min(d, maxRetryPause)
}

// lastingReason says, for the uploader, why a failure cannot pass by
// itself, or returns "" for a failure that may (disk full, store busy).
func (in *Ingester) lastingReason(err error) string {
	switch {
	case errors.Is(err, errNotFound):
		return "the uploaded file was removed before it could be ingested"
	case errors.Is(err, syscall.ENAMETOOLONG):
		return "the file name is too long to be stored with its result; use a shorter name"
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR):
		return "the result folders processed/ and rejected/ cannot be used: a file of that name is in the way; remove or rename it, then upload again"
	case errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.ELOOP):
		return "the file name cannot be used on the server; rename the file and upload it again"
	case in.db.IsTooLarge(err):
		return "the file's result is too large to be recorded; split the file"
	}
	return ""
}

// giveUp ends a job that cannot finish: the upload is rejected with reason,
// its file moved to rejected/ with an errors file when that is possible,
// else left where it is.
func (in *Ingester) giveUp(job *campaignd.Job, reason string) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	start := time.Now()
	u, err := in.db.Upload(job.Upload.ID)
	if campaignd.ErrorCode(err) == campaignd.ENOTFOUND {
		u = new(campaignd.Upload)
		*u = job.Upload
	} else if err != nil {
		return fmt.Errorf("ingest: give up upload %d: %w", job.Upload.ID, err)
	}
	if u.Outcome == campaignd.UploadAccepted || u.Outcome == campaignd.UploadRejected {
		return nil // it did end, after all
	}
	log := in.logger.With(slog.Uint64(ingestKeyUpload, u.ID), slog.String(ingestKeyFile, u.FileName))
	u.Outcome, u.FinishedAt = campaignd.UploadRejected, in.o.Now()
	u.Errors = []campaignd.FileError{clipError(campaignd.FileError{Error: reason})}
	u.ErrorCount = 0
	if in.o.Inbox != nil && !in.o.Inbox.Gone(u) {
		// On a failure the inbox clears ResultPath unless the file is there.
		if perr := in.place(u, campaignd.RejectedDir, u.Errors, &errorSink{words: campaignd.RowErrorWords(in.o.Language)}); perr != nil {
			log.Warn("rejected file left in place: it cannot be moved to rejected/", slog.Any(ingestKeyError, perr))
		}
	}
	if err := in.db.RejectUpload(u); err != nil {
		return fmt.Errorf("ingest: give up upload %d: %w", u.ID, err)
	}
	in.o.Events.IngestDone(IngestFailed, time.Since(start))
	log.Error("ingest gave up; upload rejected", slog.String(ingestKeyResult, IngestFailed),
		slog.Int("attempts", job.Attempts), slog.String("reason", reason), slog.String("result_path", u.ResultPath))
	return nil
}

// IngestFailed is the IngestDone result of a job that could not finish.
const IngestFailed = "failed"
