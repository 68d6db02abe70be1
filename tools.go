//go:build tools

// Package campaignd pins dependencies that are wired in by later packages.
package campaignd

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/dgraph-io/badger/v4"
	_ "github.com/fclairamb/ftpserverlib"
	_ "github.com/go-chi/chi/v5"
	_ "github.com/jlaffaye/ftp"
	_ "github.com/linxGnu/gosmpp"
	_ "github.com/nyaruka/phonenumbers"
	_ "github.com/pelletier/go-toml/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/afero"
	_ "golang.org/x/crypto/bcrypt"
	_ "golang.org/x/text/encoding/charmap"
	_ "golang.org/x/time/rate"
)
