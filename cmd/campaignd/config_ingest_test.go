package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIngestConfigLimits: the ingest bounds and the default sender are
// checked at start-up, with errors naming the key; valid values load.
func TestIngestConfigLimits(t *testing.T) {
	for _, tt := range []struct {
		name, toml, want string
	}{
		{"sender too long", "[ingest]\ndefault_sender = \"PAYBACKMEXICO\"\n", "ingest.default_sender"},
		{"sender too many digits", "[ingest]\ndefault_sender = \"1234567890123456\"\n", "ingest.default_sender"},
		{"sender not gsm", "[ingest]\ndefault_sender = \"Campaña\"\n", ""},
		{"sender accented", "[ingest]\ndefault_sender = \"Canción\"\n", "ingest.default_sender"},
		{"field over record", "[ingest]\nmax_field_bytes = 2000000\n", "ingest.max_field_bytes"},
		{"field tiny", "[ingest]\nmax_field_bytes = 10\n", "ingest.max_field_bytes"},
		{"record huge", "[ingest]\nmax_record_bytes = 1073741824\n", "ingest.max_record_bytes"},
		{"error rows zero", "[ingest]\nmax_error_rows = 0\n", "ingest.max_error_rows"},
		{"raised caps", "[ingest]\nmax_field_bytes = 1048576\nmax_record_bytes = 4194304\nmax_error_rows = 50\n", ""},
		{"alpha sender", "[ingest]\ndefault_sender = \"PAYBACK\"\n", ""},
		{"errors in Spanish", "[ingest]\nlanguage = \"es\"\n", ""},
		{"errors in French", "[ingest]\nlanguage = \"fr\"\n", "ingest.language"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.toml")
			os.WriteFile(path, []byte(tt.toml), 0o600)
			c, err := LoadConfig(path)
			if err == nil {
				err = c.Validate()
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to name %q", err, tt.want)
			}
		})
	}
}

// TestIngestLanguageDefault: .errors.csv is in English unless configured,
// and the configured language reaches ingest.
func TestIngestLanguageDefault(t *testing.T) {
	c := DefaultConfig()
	if c.Ingest.Language != "en" || ingestOptions(c, nil).Language != "en" {
		t.Fatalf("default ingest.language %q", c.Ingest.Language)
	}
	c.Ingest.Language = "es"
	if ingestOptions(c, nil).Language != "es" {
		t.Fatal("ingest.language does not reach ingest")
	}
}
