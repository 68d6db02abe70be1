package webui

import (
	"encoding/csv"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"campaignd"
)

// ExportHeader is the header of a broadcast's messages export (Export CSV
// in the console, messages.csv in the API).
var ExportHeader = []string{"Tracking ID", "Recipient", "Recipient (as written)", "Member ID", "Message",
	"Encoding", "Segments", "Status", "Error Code", "SMSC IDs", "Submitted At", "Settled At"}

// handleExport streams every message of a broadcast as CSV.
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	id, err := parseID(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if _, err := s.o.Backend.Broadcast(r.Context(), id); err != nil {
		s.Error(w, r, err)
		return
	}
	lw := &lazyWriter{w: w, onFirst: func() {
		setCSVHeaders(w, fmt.Sprintf("broadcast-%d-messages.csv", id))
	}}
	cw := csv.NewWriter(lw)
	cw.Write(ExportHeader)
	n := 0
	err = s.o.Backend.Messages(r.Context(), id, func(m *campaignd.Message) error {
		cw.Write(s.exportRecord(m))
		if n++; n%1000 == 0 {
			cw.Flush()
		}
		return cw.Error()
	})
	if err == nil {
		cw.Flush()
		err = cw.Error()
	}
	if err != nil {
		if !lw.started {
			s.Error(w, r, err)
			return
		}
		// The status line is gone: cut the stream so the client sees a
		// truncated download rather than a complete-looking file.
		s.log.Error("export broken off", "broadcast_id", id, slog.Any(keyError, err))
		panic(http.ErrAbortHandler)
	}
}

func (s *Server) exportRecord(m *campaignd.Message) []string {
	code := ""
	if m.ErrorCode != 0 {
		code = fmt.Sprintf("0x%08X", m.ErrorCode)
	}
	return []string{
		strconv.FormatUint(m.TrackingID, 10),
		m.Recipient,
		campaignd.SafeCSV(m.RecipientRaw),
		campaignd.SafeCSV(m.MemberID),
		campaignd.SafeCSV(m.Text),
		m.Encoding,
		strconv.Itoa(m.Segments),
		string(m.State),
		code,
		strings.Join(m.SMSCIDs, " "),
		s.csvTime(m.SubmittedAt),
		s.csvTime(m.SettledAt),
	}
}

func (s *Server) csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(s.o.Location).Format("2006-01-02 15:04:05.000")
}

func setCSVHeaders(w http.ResponseWriter, name string) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
}

// lazyWriter sets the response headers at the first write, so that an
// error before any output can still be answered with a proper status.
type lazyWriter struct {
	w       http.ResponseWriter
	onFirst func()
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.onFirst()
	}
	return l.w.Write(p)
}

// handleReportCSV serves a day's report (today's is partial), for the
// console (/reports/{day}.csv) and the API.
func (s *Server) handleReportCSV(w http.ResponseWriter, r *http.Request) {
	file := chi.URLParam(r, "file")
	if !strings.HasSuffix(file, ".csv") {
		s.Error(w, r, campaignd.Errorf(campaignd.ENOTFOUND, "No report %q.", file))
		return
	}
	day, err := s.parseDay(strings.TrimSuffix(file, ".csv"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	name := "report_" + strings.ReplaceAll(day, "-", "") + ".csv"
	if day == s.o.Now().In(s.o.Location).Format(time.DateOnly) {
		name = "report_" + strings.ReplaceAll(day, "-", "") + "_partial.csv"
	}
	lw := &lazyWriter{w: w, onFirst: func() { setCSVHeaders(w, name) }}
	if _, err := s.o.Backend.ReportCSV(r.Context(), day, lw); err != nil {
		if !lw.started {
			s.Error(w, r, err)
			return
		}
		s.log.Error("report download broken off", "day", day, slog.Any(keyError, err))
		panic(http.ErrAbortHandler)
	}
	if !lw.started { // an empty body is still a CSV file
		setCSVHeaders(w, name)
	}
}
