package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestHelpListsEverySubcommand: -h, --help and help print every subcommand
// with one line each, and exit cleanly.
func TestHelpListsEverySubcommand(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help", "help"} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), []string{arg}, strings.NewReader(""), &out, &errOut); err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		for _, sub := range []string{"serve --config", "check-file", "hash-password", "smsc-sim", "version", "help"} {
			if !strings.Contains(out.String(), "campaignd "+sub) {
				t.Errorf("%s: usage lacks %q:\n%s", arg, sub, out.String())
			}
		}
	}
}
