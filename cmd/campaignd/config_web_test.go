package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWebBrandingConfig: web.language, web.title and web.logo_file are
// checked at start-up with errors that name the key.
func TestWebBrandingConfig(t *testing.T) {
	dir := t.TempDir()
	logo := filepath.Join(dir, "logo.svg")
	if err := os.WriteFile(logo, []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	if c.Web.Language != "es" || c.Web.Title != "Payback · Campañas" {
		t.Fatalf("defaults: %q %q", c.Web.Language, c.Web.Title)
	}
	for _, tc := range []struct {
		name, key string
		edit      func(*Config)
	}{
		{"french", "web.language", func(c *Config) { c.Web.Language = "fr" }},
		{"empty title", "web.title", func(c *Config) { c.Web.Title = " " }},
		{"logo missing", "web.logo_file", func(c *Config) { c.Web.LogoFile = filepath.Join(dir, "nope.png") }},
		{"logo not an image", "web.logo_file", func(c *Config) { c.Web.LogoFile = filepath.Join(dir, "x.exe") }},
		{"good", "", func(c *Config) { c.Web.Language, c.Web.LogoFile = "en", logo }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if tc.key == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("error %v, want one naming %s", err, tc.key)
			}
		})
	}
}
