package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMessageIDFormatConfig(t *testing.T) {
	for _, tt := range []struct{ toml, env, want string }{
		{toml: "", want: "auto"},
		{toml: "[smpp]\nmessage_id_format = \"submit-hex-receipt-decimal\"\n", want: "submit-hex-receipt-decimal"},
		{env: "submit-decimal-receipt-hex", want: "submit-decimal-receipt-hex"},
		{toml: "[smpp]\nmessage_id_format = \"hex\"\n", want: "error"},
		{env: "0x01", want: "error"},
	} {
		path := filepath.Join(t.TempDir(), "c.toml")
		if err := os.WriteFile(path, []byte(tt.toml), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ApplyEnv(func(k string) string {
			if k == "CAMPAIGND_SMPP_MESSAGE_ID_FORMAT" {
				return tt.env
			}
			return ""
		}); err != nil {
			t.Fatal(err)
		}
		err = c.Validate()
		switch {
		case tt.want == "error":
			if err == nil || !strings.Contains(err.Error(), "smpp.message_id_format") {
				t.Errorf("%q %q: err = %v, want it to name smpp.message_id_format", tt.toml, tt.env, err)
			}
		case err != nil || c.SMPP.MessageIDFormat != tt.want:
			t.Errorf("%q %q: %q, %v; want %q", tt.toml, tt.env, c.SMPP.MessageIDFormat, err, tt.want)
		}
	}
}
