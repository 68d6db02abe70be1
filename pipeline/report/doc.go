// Package report produces the daily delivery report (SPEC §6): the CSV of
// the messages settled on a local day (WriteReport), its archive under
// DATA_DIR/reports, and its push over FTP (Pusher), retried on the timing
// wheel until it succeeds. Start reading at Reporter (report.go) and
// WriteReport (report_csv.go).
package report
