package ingest

import (
	"campaignd"
)

// ResultOptedOut is the row result of a number on the suppression list,
// as passed to Events.RowsIngested.
const ResultOptedOut = "opted_out"

// SuppressionViewer is implemented by an ingest store that keeps a
// suppression list (*store.DB does): each file's rows are checked against a
// snapshot of it, and a listed number is a skipped row "opted out" — not
// invalid, so never toward max_invalid_percent (SPEC §11).
type SuppressionViewer interface {
	SuppressionView() (campaignd.SuppressionSet, error)
}

// suppressionCheck returns the row check of one ingest and its release; a
// nil check when the store keeps no list (check-file without a store).
func (in *Ingester) suppressionCheck() (check func(number []byte) (bool, error), release func(), err error) {
	sv, ok := in.db.(SuppressionViewer)
	if !ok || in.db == nil {
		return nil, func() {}, nil
	}
	v, err := sv.SuppressionView()
	if err != nil {
		return nil, nil, err
	}
	return v.Has, v.Close, nil
}
