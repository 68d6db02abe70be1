//go:build !race

package ingest

// raceEnabled: the race detector is on (it multiplies memory use).
const raceEnabled = false
