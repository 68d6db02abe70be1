package webui

import "campaignd"

// neutralize was the export's own CSV-injection rule; the export now uses
// the one rule of every CSV campaignd writes, campaignd.SafeCSV, and
// TestNeutralize keeps checking it under its old name.
var neutralize = campaignd.SafeCSV
