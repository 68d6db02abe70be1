// Package bench holds campaignd's whole-system benchmarks and their data
// generators. Everything here lives in _test.go files and runs with
// go test -bench; see README.md for the method and the commands.
package bench
