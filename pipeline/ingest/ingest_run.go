package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"time"

	"campaignd"
)

// Run ingests the file of job: it validates it, streams its valid rows into
// the store, moves the file to processed/ or rejected/ with its errors file,
// and records the outcome. It returns the new broadcast, or nil and a nil
// error when the file was rejected. An error means the job could not finish
// (store or disk failure, ctx ended) and stays recorded for a later run.
//
// A job may be run again after a crash at any point and still makes at
// most one broadcast: the broadcast's ID is reserved by the job and its
// rows are rewritten; a job already finished returns its result. The file
// is moved before the store commits, and the chosen result path is recorded
// on the upload before the move, so a rerun finds the file where the
// earlier run put it (moving it on if the decision changed). The other order
// would lose the move: a committed job is never run again.
func (in *Ingester) Run(ctx context.Context, job *campaignd.Job) (*campaignd.Broadcast, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	start := time.Now()

	u, err := in.db.Upload(job.Upload.ID)
	if campaignd.ErrorCode(err) == campaignd.ENOTFOUND {
		u = new(campaignd.Upload)
		*u = job.Upload
	} else if err != nil {
		return nil, fmt.Errorf("ingest: upload %d: %w", job.Upload.ID, err)
	}
	if in.o.Inbox == nil {
		return nil, errors.New("ingest: no inbox to read uploads from")
	}
	if u.FileName == "" {
		u.FileName = path.Base(path.Clean("/" + u.Path))
	}
	log := in.logger.With(slog.Uint64(ingestKeyUpload, u.ID), slog.String(ingestKeyFile, u.FileName))
	switch u.Outcome {
	case campaignd.UploadAccepted:
		b, err := in.db.Broadcast(u.BroadcastID)
		if err != nil {
			return nil, fmt.Errorf("ingest: upload %d: %w", u.ID, err)
		}
		return b, nil
	case campaignd.UploadRejected:
		return nil, nil
	}

	if in.o.Inbox.Gone(u) {
		log.Warn("uploaded file is gone; rejecting", slog.String("path", u.Path), slog.String("stored", u.Stored))
		u.Outcome, u.FinishedAt = campaignd.UploadRejected, in.o.Now()
		u.Errors = []campaignd.FileError{{Error: "the uploaded file was removed before it could be ingested"}}
		if err := in.db.RejectUpload(u); err != nil {
			return nil, fmt.Errorf("ingest: upload %d: %w", u.ID, err)
		}
		in.o.Events.IngestDone(campaignd.UploadRejected, time.Since(start))
		return nil, nil
	}
	if IsSuppressionUpload(u) { // a list for the suppression list, not a broadcast (optout_import.go)
		if err := in.importSuppressions(ctx, u, log, start); err != nil {
			return nil, fmt.Errorf("ingest: suppression list %d (%s): %w", u.ID, u.FileName, err)
		}
		return nil, nil
	}
	oc, errs, w, err := in.ingestFile(ctx, job, u)
	if err != nil {
		return nil, fmt.Errorf("ingest: upload %d (%s): %w", u.ID, u.FileName, err)
	}
	defer errs.close()

	u.Size, u.SHA256, u.FinishedAt = oc.scan.Size, oc.scan.SHA256, in.o.Now()
	u.Errors = append(oc.v.FileErrors, errs.first...)
	u.ErrorCount = errs.n
	dir := campaignd.ProcessedDir
	if !oc.accepted() {
		dir = campaignd.RejectedDir
	}
	if err := in.place(u, dir, oc.v.FileErrors, errs); err != nil {
		if w != nil {
			w.Abort()
		}
		return nil, fmt.Errorf("ingest: upload %d (%s): %w", u.ID, u.FileName, err)
	}

	if !oc.accepted() {
		u.Outcome = campaignd.UploadRejected
		if err := in.db.RejectUpload(u); err != nil {
			return nil, fmt.Errorf("ingest: upload %d (%s): %w", u.ID, u.FileName, err)
		}
		in.countRows(&oc.v)
		in.o.Events.IngestDone(campaignd.UploadRejected, time.Since(start))
		first := u.Errors[0]
		log.Warn("file rejected", slog.String(ingestKeyResult, campaignd.UploadRejected),
			slog.Int("line", first.Line), slog.String(ingestKeyError, first.Error),
			slog.Int(ingestKeyRows, oc.v.Rows), slog.String("result_path", u.ResultPath))
		return nil, nil
	}

	b := &campaignd.Broadcast{
		Name:        oc.name,
		FileName:    u.FileName,
		Sender:      oc.sender,
		Status:      oc.status,
		Charset:     oc.v.Charset,
		Notes:       oc.v.Notes,
		CreatedAt:   in.o.Now(),
		ScheduledAt: oc.scheduledAt,
		Validity:    oc.v.Validity,
		Segments:    oc.v.Segments,
		Counts:      campaignd.Counts{Invalid: int64(oc.v.Invalid), Duplicate: int64(oc.v.Dup), OptedOut: int64(oc.v.OptedOut)},
	}
	if err := w.Commit(b, u); err != nil {
		return nil, fmt.Errorf("ingest: upload %d (%s): %w", u.ID, u.FileName, err)
	}
	d := time.Since(start)
	in.countRows(&oc.v)
	in.o.Events.IngestDone(campaignd.UploadAccepted, d)
	log.Info("file accepted", slog.String(ingestKeyResult, campaignd.UploadAccepted),
		slog.Uint64(ingestKeyBroadcast, b.ID), slog.String("status", string(b.Status)),
		slog.Int(ingestKeyRows, oc.v.Rows), slog.Int(ResultValid, oc.v.Valid),
		slog.Int(ResultInvalid, oc.v.Invalid), slog.Int(ResultDuplicate, oc.v.Dup),
		slog.Duration(ingestKeyDuration, d))
	return b, nil
}

// ingestFile evaluates the file of u, read from the inbox, streaming valid rows into a
// broadcast writer. The writer is returned (open) when the file is
// accepted, and aborted otherwise.
func (in *Ingester) ingestFile(ctx context.Context, job *campaignd.Job, u *campaignd.Upload) (*outcome, *errorSink, campaignd.RowWriter, error) {
	f, err := in.o.Inbox.Open(u)
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close()
	w, err := in.db.NewBroadcastWriter(job)
	if err != nil {
		return nil, nil, nil, err
	}
	errs := &errorSink{max: in.o.MaxErrorRows, words: campaignd.RowErrorWords(in.o.Language)}
	oc, err := in.evaluate(ctx, f, u.FileName, u.Via == campaignd.ViaSTOR, w.Add, errs.add)
	if err != nil {
		errs.close()
		w.Abort()
		return nil, nil, nil, err
	}
	if !oc.accepted() {
		if err := w.Abort(); err != nil {
			errs.close()
			return nil, nil, nil, err
		}
		return oc, errs, nil, nil
	}
	return oc, errs, w, nil
}

func (in *Ingester) countRows(v *validation) {
	in.o.Events.RowsIngested(ResultValid, v.Valid)
	in.o.Events.RowsIngested(ResultInvalid, v.Invalid)
	in.o.Events.RowsIngested(ResultDuplicate, v.Dup)
	in.o.Events.RowsIngested(ResultOptedOut, v.OptedOut)
}
