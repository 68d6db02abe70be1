package webui

import "campaignd"

// explain turns a row error into a reason its author can act on, in the
// user's language, with the words ingest uses for <name>.errors.csv
// (campaignd.ExplainRowError).
func (l *locale) explain(e campaignd.FileError) string { return campaignd.ExplainRowError(l, e) }
