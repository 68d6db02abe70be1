// Package ingest turns an uploaded CSV file into a broadcast: reading,
// validating, personalising and deciding (accepted or rejected), placing the
// file in processed/ or rejected/ with its errors file (through the Inbox
// ftpd implements). It also imports opt-out lists uploaded to
// suppressions/ and normalises numbers for the rest of the pipeline
// (NumberRules). It declares the small interfaces it needs from the store
// (Store and the suppression views).
//
// An Ingester validates a file in two streaming passes and never holds the
// file in memory. The first pass hashes it (SHA-256, for duplicate files),
// checks that it is UTF-8 (else it is read as Windows-1252), finds NUL
// bytes and counts its size. The second pass parses it with encoding/csv
// (delimiter detected from the header line), checks every row (SPEC §3)
// and streams the valid rows into the store's BroadcastWriter; row errors
// go to a temporary CSV file, so memory is bounded by the duplicate set
// (a map of 64-bit numbers, one per valid recipient).
//
// Choices where the specification is silent:
//
//   - Rows whose fields are all empty (";;;" rows that spreadsheets export)
//     are ignored like blank lines: they are not data rows.
//   - Duplicate recipients are not "invalid" for max_invalid_percent; only
//     rows with an invalid recipient, an empty or too-long message or the
//     wrong number of fields count. A row is a duplicate only of an earlier
//     valid row, so an invalid row never hides a later good one.
//   - Every problem of a row is reported (a row may have two error lines);
//     the row is counted once. Upload.ErrorCount counts error lines.
//   - Mexican numbers are always accepted, in exactly the forms of SPEC §3
//     (10 digits; 52, +52 or 0052 + 10; 521 + 10; 044/045 + 10). Anything
//     else starting with +52 is invalid, whether or not "MX" is listed in
//     AllowedCountries: listing MX does not make phonenumbers' wider idea
//     of a Mexican number (e.g. +521…, landline lengths) valid. Other
//     countries need a leading '+' and a number phonenumbers finds valid
//     for a listed region; they are stored as E.164 digits without '+'.
//   - Dates: besides the listed layouts, day-first dates and hours may
//     have one digit (1/12/2026 9:00), and 2006-01-02T15:04 is accepted.
//     Two rows with different text for the same instant are "the same
//     date". A date at or before now starts sending; ScheduledAt is the
//     file's date either way.
//   - {Header} may name any column but the message column itself; values
//     substituted are trimmed. Message texts are trimmed; a message of
//     spaces is empty.
//   - Two columns with the same header text are rejected like a column
//     matched twice: {Header} would be ambiguous.
//   - A file that starts with a UTF-8 BOM but is not valid UTF-8 is read
//     as Windows-1252 without the BOM bytes.
//   - Files are read and placed only through a campaignd.Inbox (ftpd's
//     jails): ingest never builds a path. processed/ and rejected/ are at
//     the root of the uploader's jail; a taken name becomes
//     name_YYYYMMDD-HHMMSS.csv (local time), then …-2.csv and so on; the
//     errors file follows the chosen name and nothing is ever overwritten.
//   - errors.csv uses CRLF line ends (RFC 4180); file-level errors first.
//   - Runs are serialised: one ingest at a time bounds memory (SPEC §10)
//     and makes duplicate-file detection exact.
//
// Crash safety: the job's broadcast ID is reserved when the upload is
// recorded, and the store writer clears rows of an earlier attempt, so a
// rerun rewrites the same broadcast. The file is moved before the store
// commit; the target path is recorded on the upload first, so a rerun finds
// a file that was already moved. A job whose upload is already accepted or
// rejected returns that result without touching anything.
package ingest
