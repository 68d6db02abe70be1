// Package ftpd is campaignd's FTP endpoint: an embedded FTP/FTPS server
// (github.com/fclairamb/ftpserverlib over github.com/spf13/afero) that hands
// every completed upload to a callback.
//
// # The jail
//
// Each user is confined to Root/<user>/ through an afero.Fs built on os.Root.
// os.Root resolves every name, including symbolic links, relative to that one
// directory and refuses anything that would leave it: "..", absolute paths and
// symlinks pointing outside (even ones placed there by someone else) all fail.
// The server offers no way to create links (SITE is disabled, the symlink
// extension is not implemented), chmod/chown/MFMT are refused, and active mode
// (PORT/EPRT) is disabled, so the server never dials out.
//
// Options.Jail replaces the disk with any afero.Fs per user (pgfs, so that
// every node of a cluster serves the same files). The sessions then do
// every operation through it; "fsynced" below means the Fs's durable Sync
// and Close, and a rename is durable when Rename returns, so there is no
// directory fsync. Open's sweep of the queue (Options.Queued) spares files
// queued less than Options.QueueSweepAge ago: another live node may be
// recording their job.
//
// # The upload lifecycle
//
// A STOR is written to a hidden temporary file in the target directory (LIST
// never shows it; its name cannot be used by clients). While the bytes
// stream in, the file's size is counted against Options.MaxUploadBytes and
// its SHA-256 is computed. Resume (REST) and append (APPE) are refused, so one
// upload is always one whole file.
//
// When the library reports the transfer as finished, before it sends the
// final reply (ftpserverlib closes the file before replying 226):
//
//   - if the transfer failed (a reset or dropped data connection, the
//     data-connection idle timeout, the size cap, a disk error), or only
//     looks complete because the client sent ABOR or closed its control
//     connection before the server saw the end of the data (see settle), or
//     its size differs from the one announced by ALLO, the temporary file is
//     removed and nothing else happens (the client gets 426/550, 451 for a
//     disk or database error, or 552 for the size cap);
//   - otherwise the file is fsynced. If it completes an upload (see
//     Options.CompleteOn: by default a name ending in ".csv", any case, not
//     under processed/, rejected/ or reports/), it is renamed into the jail's
//     hidden queue directory under a unique name, the directories are
//     fsynced and Options.OnUpload is called with Path (the name the client
//     gave) and Stored (the queued file). Only when it returns nil does the
//     client get 226; if it fails the queued file is removed and the client
//     gets 451 ("local error in processing: try again later"), so the
//     uploader retries. A 550 is kept for what the client must change (a
//     bad path, a read-only folder, an ALLO mismatch): a client that takes
//     every 5xx as final is right to. A file that completes nothing is
//     renamed to its name.
//
// Because each completed upload has its own queued file, concurrent uploads
// of one name, and an upload of a name whose previous upload is still
// waiting, never share or replace bytes.
//
// A rename (RNFR/RNTO) to a ".csv" name (modes stor and rename) queues the
// file the same way, with Via "RNTO" and the size and SHA-256 read back; in
// marker mode a NAME.csv.done or NAME.csv.ok marker (uploaded or renamed to)
// queues NAME.csv with Via "MARKER" and is then removed. If OnUpload fails
// the rename is undone and RNTO fails.
//
// processed/, rejected/ and reports/ at the top of the jail are read-only to
// the client; the queue is invisible.
//
// # The inbox
//
// Ingest reads uploads and places their results only through an Inbox
// (campaignd.Inbox): it opens an upload where it was queued, moves it to
// processed/ or rejected/ under a name that replaces nothing (link then
// unlink, so a crash in between leaves two names, cleaned up at the next
// look), writes its errors file through a temporary file, and records the
// chosen name before the move so that a job cut short finds its file. The
// Inbox works over one afero.Fs per user: the os.Root jail on disk, or
// another filesystem given as InboxOptions.Jail. No other package builds a
// path into a jail.
//
// # What cannot be detected
//
// FTP has no length header. A client that closes its data connection
// gracefully in the middle of a file, while keeping its control connection
// and sending no ABOR, looks exactly like one that sent the whole file. For
// that, clients can send ALLO, and operators can choose CompleteOn "rename"
// or "marker"; in "stor" mode ingest rejects a file whose last line is cut.
package ftpd
