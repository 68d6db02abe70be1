package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigIsValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestExampleConfigLoads(t *testing.T) {
	c, err := LoadConfig("../../campaignd.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.FTP.Users) == 0 || len(c.Web.Users) == 0 {
		t.Fatal("example config has no users")
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for _, tt := range []struct {
		name, toml, env, want string
	}{
		{name: "unknown key", toml: "[smpp]\ntsp = 5\n", want: "unknown key smpp.tsp"},
		{name: "wrong type", toml: "[smpp]\ntps = \"fast\"\n", want: "smpp.tps"},
		{name: "bad duration", toml: "[ftp]\nidle_timeout = \"5 minutes\"\n", want: "ftp.idle_timeout"},
		{name: "validity too short", toml: "[smpp]\nvalidity = \"5m\"\n", want: "smpp.validity"},
		{name: "bad tls", toml: "[ftp]\ntls = \"yes\"\n", want: "ftp.tls"},
		{name: "bad role", toml: "[[web.users]]\nname = \"a\"\npassword_hash = \"$2a$10$x\"\nrole = \"root\"\n", want: "web.users[0].role"},
		{name: "plain password", toml: "[[ftp.users]]\nname = \"a\"\npassword_hash = \"secret\"\n", want: "ftp.users[0].password_hash"},
		{name: "bad window", toml: "[sending]\nwindow = \"8-21\"\n", want: "sending.window"},
		{name: "bad zone", toml: "timezone = \"Mars/Olympus\"\n", want: "timezone"},
		{name: "env int", env: "CAMPAIGND_SMPP_TPS=lots", want: "smpp.tps (from CAMPAIGND_SMPP_TPS"},
		{name: "env duration", env: "CAMPAIGND_REPORT_RECEIPT_TIMEOUT=soon", want: "report.receipt_timeout"},
		{name: "bad report time", env: "CAMPAIGND_REPORT_TIME=25:00", want: "report.time"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := loadConfig(t, tt.toml, tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to name %q", err, tt.want)
			}
		})
	}
}

func TestEnvOverrides(t *testing.T) {
	c := DefaultConfig()
	env := map[string]string{
		"CAMPAIGND_SMPP_TPS": "50", "CAMPAIGND_DATA_DIR": "/srv/x", "CAMPAIGND_FTP_IDLE_TIMEOUT": "30s",
		"CAMPAIGND_INGEST_ALLOWED_COUNTRIES": "MX, US", "CAMPAIGND_FTP_MAX_UPLOAD_BYTES": "1024",
	}
	if err := c.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.SMPP.TPS != 50 || c.DataDir != "/srv/x" || time.Duration(c.FTP.IdleTimeout) != 30*time.Second ||
		strings.Join(c.Ingest.AllowedCountries, "|") != "MX|US" || c.FTP.MaxUploadBytes != 1024 {
		t.Fatalf("env not applied: %+v", c)
	}
}

// loadConfig loads toml from a file, applies one KEY=value environment
// override (env may be empty) and validates: the error start-up would give.
func loadConfig(t *testing.T, toml, env string) error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		return err
	}
	k, v, _ := strings.Cut(env, "=")
	if err := c.ApplyEnv(func(s string) string {
		if s == k {
			return v
		}
		return ""
	}); err != nil {
		return err
	}
	return c.Validate()
}
