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
//   - if the transfer failed (ABOR, a reset or dropped data connection, the
//     data-connection idle timeout, the size cap, a disk error), the temporary
//     file is removed and nothing else happens (the client gets 426/550, or
//     552 for the size cap);
//   - otherwise the file is fsynced, renamed to its final name and the
//     directory fsynced; then, if the name ends in ".csv" (any case) and no
//     directory in its path is named processed, rejected or reports,
//     Options.OnUpload is called. Only when it returns nil does the client get
//     226. If it fails, the file is removed and the client gets 550, so the
//     uploader retries.
//
// A rename (RNFR/RNTO) to a ".csv" name triggers OnUpload the same way, with
// Via "RNTO" and the size and SHA-256 read back from the file; if OnUpload
// fails the rename is undone and RNTO fails.
//
// # What cannot be detected
//
// FTP has no length header. A client that closes its data connection
// gracefully in the middle of a file looks exactly like one that sent the
// whole file: the server sees end-of-stream, returns 226 and triggers. Only
// the content can tell (the CSV parser must cope with a truncated last line),
// or the uploader can STOR to a non-.csv name and rename when it knows the
// upload succeeded. A reset connection, ABOR or a stall is detected.
package ftpd
