//go:build !race

package testenv

// RaceEnabled reports whether the binary was built with -race, whose shadow
// memory multiplies a process's RSS: memory figures mean nothing then.
const RaceEnabled = false
