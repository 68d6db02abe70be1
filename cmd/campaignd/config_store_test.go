package main

import (
	"strings"
	"testing"
)

// [store]: badger by default; postgres needs a dsn (from the file or the
// environment), and an error about the dsn never shows the dsn (it may hold
// a password).
func TestConfigStore(t *testing.T) {
	if c := DefaultConfig(); c.Store.Engine != "badger" || c.clustered() {
		t.Fatalf("default store = %+v; want badger, not clustered", c.Store)
	}
	for _, tc := range []struct {
		name, toml, env, want string // want: "" = valid, else a part of the error
	}{
		{"badger ignores a dsn", "[store]\nengine = \"badger\"\ndsn = \"postgres://x@y/z\"\n", "", ""},
		{"postgres with a dsn", "[store]\nengine = \"postgres\"\ndsn = \"postgres://campaignd:pw@db:5432/campaignd\"\nnode = \"web-1\"\n", "", ""},
		{"postgres from the environment", "", "CAMPAIGND_STORE_ENGINE=postgres", "store.dsn"},
		{"postgres without a dsn", "[store]\nengine = \"postgres\"\n", "", "store.dsn"},
		{"dsn from the environment", "[store]\nengine = \"postgres\"\n", "CAMPAIGND_STORE_DSN=postgres://a:b@c/d", ""},
		{"unknown engine", "[store]\nengine = \"mysql\"\n", "", "store.engine"},
		{"bad dsn", "[store]\nengine = \"postgres\"\ndsn = \"postgres://u:s3cret@h:notaport/d\"\n", "", "store.dsn"},
		{"node with a space", "[store]\nnode = \"a b\"\n", "", "store.node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := loadConfig(t, tc.toml, tc.env)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error %v; want valid", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v; want one naming %s", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "s3cret"):
				t.Fatalf("error %q shows the dsn's password", err)
			}
		})
	}
	c := DefaultConfig()
	c.Web.Listen = "127.0.0.1:8089"
	if n := c.nodeName(); !strings.HasSuffix(n, ":8089") || len(n) <= len(":8089") {
		t.Fatalf("default node name %q; want the host name and the console's port", n)
	}
	c.Store.Node = "web-2"
	if n := c.nodeName(); n != "web-2" {
		t.Fatalf("node name %q; want store.node", n)
	}
}
