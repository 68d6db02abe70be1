package report_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"testing"
	"time"

	"campaignd"
	"campaignd/pipeline/report"
)

// reportFormulaSource serves one message whose file- and operator-supplied
// values are spreadsheet formulas or plain numbers.
type reportFormulaSource struct {
	sender, name, recipient, member string
}

func (s reportFormulaSource) ReportMessages(day string, fn func(*campaignd.Message) error) error {
	ts := time.Date(2026, 11, 21, 10, 0, 0, 0, reportLoc)
	return fn(&campaignd.Message{Row: campaignd.Row{RecipientRaw: s.recipient, MemberID: s.member}, BroadcastID: 1,
		TrackingID: 1, State: campaignd.StateDelivered, SubmittedAt: ts, SettledAt: ts})
}

func (s reportFormulaSource) Broadcast(id uint64) (*campaignd.Broadcast, error) {
	return &campaignd.Broadcast{ID: id, Name: s.name, Sender: s.sender}, nil
}

// TestReportNeutralisesFormulas: Sender, Recipient, Campaign Name and
// Member ID never reach the report as a formula; plain numbers stay as
// written.
func TestReportNeutralisesFormulas(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   reportFormulaSource
		want [4]string // sender, campaign, recipient, member: as in the source
	}{
		{"formulas", reportFormulaSource{"=1+1", `=HYPERLINK("http://x","y")`, "@SUM(A1)", "=cmd|' /C calc'!A0"},
			[4]string{"'=1+1", `'=HYPERLINK("http://x","y")`, "'@SUM(A1)", "'=cmd|' /C calc'!A0"}},
		{"signs that are not numbers", reportFormulaSource{"+cmd", "-2+3", "\tx", "\rx"},
			[4]string{"'+cmd", "'-2+3", "'\tx", "'\rx"}},
		{"plain numbers stay", reportFormulaSource{"28776", "Puntos -5", "+52 55 1234 5678", "-5"},
			[4]string{"28776", "Puntos -5", "+52 55 1234 5678", "-5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if _, err := report.WriteReport(context.Background(), &buf, tc.in, "20261121", reportLoc); err != nil {
				t.Fatal(err)
			}
			recs, err := csv.NewReader(&buf).ReadAll()
			if err != nil || len(recs) != 2 {
				t.Fatalf("%d records, %v", len(recs), err)
			}
			r := recs[1]
			if got := [4]string{r[0], r[3], r[1], r[6]}; got != tc.want {
				t.Errorf("sender, campaign, recipient, member = %q, want %q", got, tc.want)
			}
		})
	}
}
