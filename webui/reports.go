package webui

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"campaignd"
)

type reportsData struct {
	Reports []*campaignd.Report
	Today   string
	Bars    []dayBar // messages per day, oldest first
	Peak    int64
}

// dayBar is one day's bar in the Reports chart (SVG units).
type dayBar struct {
	Day        string
	Rows       int64
	X, Y, W, H float64
}

// reportDays is how many days the Reports chart shows.
const reportDays = 31

func dayBars(list []*campaignd.Report) ([]dayBar, int64) {
	var days []*campaignd.Report
	for _, r := range list {
		if !r.Partial {
			days = append(days, r)
		}
	}
	days = days[:min(len(days), reportDays)]
	var peak int64
	for _, r := range days {
		peak = max(peak, r.Rows)
	}
	bars := make([]dayBar, 0, len(days))
	w := float64(chartW) / float64(reportDays)
	for i := len(days) - 1; i >= 0; i-- { // the list is newest first
		r := days[i]
		h := 0.0
		if peak > 0 {
			h = float64(r.Rows) * float64(chartH-4) / float64(peak)
		}
		x := float64(len(bars)) * w
		bars = append(bars, dayBar{Day: r.Day, Rows: r.Rows, X: x + 1, Y: float64(chartH) - h, W: w - 2, H: h})
	}
	return bars, peak
}

func (s *Server) reportsData(r *http.Request) (*reportsData, error) {
	list, err := s.o.Backend.Reports(r.Context())
	if err != nil {
		return nil, err
	}
	d := &reportsData{Reports: list, Today: s.o.Now().In(s.o.Location).Format(time.DateOnly)}
	d.Bars, d.Peak = dayBars(list)
	return d, nil
}

func (s *Server) handleReports(w http.ResponseWriter, r *http.Request) {
	d, err := s.reportsData(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.renderPage(w, r, http.StatusOK, "reports", &page{Title: s.loc(r).T("Reports"), Nav: "reports", Data: d})
}

// parseDay checks a report day: YYYY-MM-DD, not after today.
func (s *Server) parseDay(v string) (string, error) {
	d, err := time.ParseInLocation(time.DateOnly, v, s.o.Location)
	if err != nil {
		return "", campaignd.Errorf(campaignd.ENOTFOUND, "No report %q: days are written YYYY-MM-DD.", v)
	}
	if today := s.o.Now().In(s.o.Location).Format(time.DateOnly); v > today {
		return "", campaignd.Errorf(campaignd.ENOTFOUND, "No report for %s: the day has not come yet.", v)
	}
	return d.Format(time.DateOnly), nil
}

func (s *Server) handlePush(w http.ResponseWriter, r *http.Request) {
	day, err := s.parseDay(chi.URLParam(r, "day"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	p := principalFrom(r.Context())
	rep, err := s.o.Backend.PushReport(r.Context(), day, p.User, remoteIP(r))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.log.Info("report push requested", keyUser, p.User, keyRemote, remoteIP(r), "day", day)
	if !isHTMX(r) {
		http.Redirect(w, r, "/reports", http.StatusSeeOther)
		return
	}
	d, err := s.reportsData(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	l := s.loc(r)
	text := l.T("Report of %s: push %s.", l.Day(day), l.T(rep.PushState))
	if rep.LastError != "" {
		text += " " + l.Msg(rep.LastError)
	}
	s.renderFragment(w, r, http.StatusOK, "reports", "pushed",
		s.fill(r, &page{Data: d, Flash: &flash{Text: text, Error: rep.PushState == campaignd.PushFailed}}))
}
