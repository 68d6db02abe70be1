package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"campaignd"
	"campaignd/pipeline/ingest"
	"campaignd/webui"
)

// Duration is a time.Duration written as "5m" in TOML and the environment.
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration like \"5m\" or \"48h\": %q", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Config is the whole configuration (SPEC §9). DefaultConfig holds the
// demo's values; a file overrides them, and the environment overrides both.
type Config struct {
	DataDir   string          `toml:"data_dir"`
	Timezone  string          `toml:"timezone"`
	Log       LogConfig       `toml:"log"`
	FTP       FTPConfig       `toml:"ftp"`
	Ingest    IngestConfig    `toml:"ingest"`
	Web       WebConfig       `toml:"web"`
	SMPP      SMPPConfig      `toml:"smpp"`
	Sending   SendingConfig   `toml:"sending"`
	Report    ReportConfig    `toml:"report"`
	Optout    OptoutConfig    `toml:"optout"` // optout.go
	Metrics   MetricsConfig   `toml:"metrics"`
	Simulator SimulatorConfig `toml:"simulator"`
	Store     StoreConfig     `toml:"store"` // cluster.go
}

// LogConfig is [log].
type LogConfig struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// FTPConfig is [ftp].
type FTPConfig struct {
	Listen              string    `toml:"listen"`
	PassivePorts        string    `toml:"passive_ports"`
	PublicHost          string    `toml:"public_host"`
	TLS                 string    `toml:"tls"`
	TLSCertFile         string    `toml:"tls_cert_file"`
	TLSKeyFile          string    `toml:"tls_key_file"`
	MaxUploadBytes      int64     `toml:"max_upload_bytes"`
	IdleTimeout         Duration  `toml:"idle_timeout"`
	MaxConnectionsPerIP int       `toml:"max_connections_per_ip"`
	BanAfter            int       `toml:"ban_after"`
	BanWindow           Duration  `toml:"ban_window"`
	BanFor              Duration  `toml:"ban_for"`
	CompleteOn          string    `toml:"complete_on"`
	Users               []FTPUser `toml:"users"`
}

// FTPUser is one [[ftp.users]].
type FTPUser struct {
	Name         string `toml:"name"`
	PasswordHash string `toml:"password_hash"`
}

// IngestConfig is [ingest].
type IngestConfig struct {
	MaxRows           int      `toml:"max_rows"`
	MaxInvalidPercent int      `toml:"max_invalid_percent"`
	MaxSegments       int      `toml:"max_segments"`
	DuplicateWindow   Duration `toml:"duplicate_window"`
	DefaultSender     string   `toml:"default_sender"`
	AllowedCountries  []string `toml:"allowed_countries"`
	MaxFieldBytes     int      `toml:"max_field_bytes"`
	MaxRecordBytes    int      `toml:"max_record_bytes"`
	MaxErrorRows      int      `toml:"max_error_rows"`
	// Language is the language of the reasons in <name>.errors.csv (es |
	// en); en by default, since the uploader is Syniverse.
	Language string `toml:"language"`
}

// WebConfig is [web].
type WebConfig struct {
	Listen      string    `toml:"listen"`
	BaseURL     string    `toml:"base_url"`
	TLSCertFile string    `toml:"tls_cert_file"`
	TLSKeyFile  string    `toml:"tls_key_file"`
	Users       []WebUser `toml:"users"`
	// Language is the console's language when neither the user nor the
	// browser chose one (es | en); Title and LogoFile brand it.
	Language string `toml:"language"`
	Title    string `toml:"title"`
	LogoFile string `toml:"logo_file"`
}

// WebUser is one [[web.users]].
type WebUser struct {
	Name         string `toml:"name"`
	PasswordHash string `toml:"password_hash"`
	Role         string `toml:"role"`
}

// SMPPConfig is [smpp].
type SMPPConfig struct {
	Addr            string   `toml:"addr"`
	SystemID        string   `toml:"system_id"`
	Password        string   `toml:"password"`
	SystemType      string   `toml:"system_type"`
	Bind            string   `toml:"bind"`
	TPS             int      `toml:"tps"`
	Window          int      `toml:"window"`
	Binds           int      `toml:"binds"`
	Validity        Duration `toml:"validity"`
	MaxAttempts     int      `toml:"max_attempts"`
	ResponseTimeout Duration `toml:"response_timeout"`
	EnquireLink     Duration `toml:"enquire_link"`
	SourceTON       int      `toml:"source_ton"`
	SourceNPI       int      `toml:"source_npi"`
	DestTON         int      `toml:"dest_ton"`
	DestNPI         int      `toml:"dest_npi"`
	// MessageIDFormat: how receipt ids relate to submit_sm_resp ids.
	MessageIDFormat string `toml:"message_id_format"`
}

// SendingConfig is [sending].
type SendingConfig struct {
	Window string `toml:"window"`
}

// ReportConfig is [report].
type ReportConfig struct {
	Time           string   `toml:"time"`
	FileName       string   `toml:"file_name"`
	FTPURL         string   `toml:"ftp_url"`
	TLS            string   `toml:"tls"`
	ReceiptTimeout Duration `toml:"receipt_timeout"`
}

// MetricsConfig is [metrics].
type MetricsConfig struct {
	Listen string `toml:"listen"`
}

// SimulatorConfig is [simulator].
type SimulatorConfig struct {
	DeliveredPercent int      `toml:"delivered_percent"`
	ReceiptDelay     Duration `toml:"receipt_delay"`
}

// DefaultConfig returns the demo configuration: everything on 127.0.0.1.
func DefaultConfig() Config {
	return Config{
		DataDir:  "data",
		Timezone: "America/Mexico_City",
		Log:      LogConfig{Level: "info", Format: "text"},
		FTP: FTPConfig{
			Listen: "127.0.0.1:2121", PassivePorts: "50000-50100", TLS: "off",
			MaxUploadBytes: 1 << 30, IdleTimeout: Duration(5 * time.Minute), MaxConnectionsPerIP: 20,
			BanAfter: 10, BanWindow: Duration(10 * time.Minute), BanFor: Duration(30 * time.Minute),
			CompleteOn: "stor",
		},
		Ingest: IngestConfig{
			MaxRows: 5_000_000, MaxInvalidPercent: 10, MaxSegments: 6,
			DuplicateWindow: Duration(720 * time.Hour), DefaultSender: "28776", AllowedCountries: []string{"MX"},
			MaxFieldBytes: ingest.DefaultMaxFieldBytes, MaxRecordBytes: ingest.DefaultMaxRecordBytes,
			MaxErrorRows: ingest.DefaultMaxErrorRows, Language: campaignd.LangEN,
		},
		Web: WebConfig{Listen: "127.0.0.1:8080", Language: "es", Title: "Payback · Campañas"},
		SMPP: SMPPConfig{
			Bind: "transceiver", TPS: 100, Window: 10, Binds: 1, Validity: Duration(48 * time.Hour), MaxAttempts: 5,
			ResponseTimeout: Duration(10 * time.Second), EnquireLink: Duration(30 * time.Second),
			SourceTON: 3, SourceNPI: 0, DestTON: 1, DestNPI: 1,
			MessageIDFormat: campaignd.IDFormatAuto,
		},
		Report: ReportConfig{
			Time: "01:00", FileName: "report_{date}.csv", TLS: "off", ReceiptTimeout: Duration(72 * time.Hour),
		},
		Optout:    OptoutConfig{Keywords: []string{"BAJA", "STOP", "ALTO", "CANCELAR", "NO MAS"}},
		Metrics:   MetricsConfig{Listen: "127.0.0.1:9102"},
		Simulator: SimulatorConfig{DeliveredPercent: 95, ReceiptDelay: Duration(2 * time.Second)},
		Store:     StoreConfig{Engine: "badger"},
	}
}

// LoadConfig reads a TOML file over the defaults. Unknown keys are errors
// that name the key, so a typo never silently falls back to a default.
func LoadConfig(path string) (Config, error) {
	c := DefaultConfig()
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	dec := toml.NewDecoder(bytes.NewReader(b)).DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var strict *toml.StrictMissingError
		var derr *toml.DecodeError
		switch {
		case errors.As(err, &strict):
			var keys []string
			for _, e := range strict.Errors {
				keys = append(keys, strings.Join(e.Key(), "."))
			}
			return c, fmt.Errorf("config %s: unknown key %s", path, strings.Join(keys, ", "))
		case errors.As(err, &derr):
			row, col := derr.Position()
			k := strings.Join(derr.Key(), ".")
			if k == "" {
				k = keyAt(b, row)
			}
			return c, fmt.Errorf("config %s:%d:%d: %s: %s", path, row, col, k, strings.TrimPrefix(derr.Error(), "toml: "))
		}
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// keyAt names the key defined on line row of a TOML document: the
// enclosing table's name and the key before "=".
func keyAt(doc []byte, row int) string {
	table := ""
	for i, line := range strings.Split(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			table = strings.Trim(line, "[] ")
		}
		if i+1 == row {
			k, _, _ := strings.Cut(line, "=")
			if k = strings.TrimSpace(k); table != "" {
				return table + "." + k
			}
			return k
		}
	}
	return "?"
}

// ApplyEnv overrides every scalar key from CAMPAIGND_<SECTION>_<KEY>
// (CAMPAIGND_<KEY> for top-level keys); string lists take commas.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	return applyEnv(reflect.ValueOf(c).Elem(), "CAMPAIGND", "", getenv)
}

func applyEnv(v reflect.Value, prefix, path string, getenv func(string) string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("toml")
		fv := v.Field(i)
		key, env := name, prefix+"_"+strings.ToUpper(name)
		if path != "" {
			key = path + "." + name
		}
		if fv.Kind() == reflect.Struct {
			if err := applyEnv(fv, env, key, getenv); err != nil {
				return err
			}
			continue
		}
		s := getenv(env)
		if s == "" {
			continue
		}
		bad := func(err error) error { return fmt.Errorf("config: %s (from %s=%q): %v", key, env, s, err) }
		switch p := fv.Addr().Interface().(type) {
		case *string:
			*p = s
		case *int:
			n, err := strconv.Atoi(s)
			if err != nil {
				return bad(errors.New("not an integer"))
			}
			*p = n
		case *int64:
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return bad(errors.New("not an integer"))
			}
			*p = n
		case *Duration:
			if err := p.UnmarshalText([]byte(s)); err != nil {
				return bad(err)
			}
		case *[]string:
			*p = nil
			for _, part := range strings.Split(s, ",") {
				if part = strings.TrimSpace(part); part != "" {
					*p = append(*p, part)
				}
			}
		default:
			// Lists of tables (users) come only from the file.
		}
	}
	return nil
}

// Validate checks every value and returns an error naming the first bad
// key.
func (c *Config) Validate() error {
	bad := func(key string, format string, args ...any) error {
		return fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...))
	}
	if c.DataDir == "" {
		return bad("data_dir", "must not be empty")
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		return bad("timezone", "unknown time zone %q", c.Timezone)
	}
	if !oneOf(c.Log.Level, "debug", "info", "warn", "error") {
		return bad("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	if !oneOf(c.Log.Format, "text", "json") {
		return bad("log.format", "must be text or json, not %q", c.Log.Format)
	}
	for key, addr := range map[string]string{"ftp.listen": c.FTP.Listen, "web.listen": c.Web.Listen, "metrics.listen": c.Metrics.Listen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return bad(key, "must be host:port, not %q", addr)
		}
	}
	if _, _, err := c.FTP.PassiveRange(); err != nil {
		return bad("ftp.passive_ports", "%v", err)
	}
	if c.FTP.PublicHost != "" {
		if ip := net.ParseIP(c.FTP.PublicHost); ip == nil || ip.To4() == nil {
			return bad("ftp.public_host", "must be an IPv4 address, not %q", c.FTP.PublicHost)
		}
	}
	if !oneOf(c.FTP.TLS, "off", "explicit", "required", "implicit") {
		return bad("ftp.tls", "must be off, explicit, required or implicit, not %q", c.FTP.TLS)
	}
	if !oneOf(c.FTP.CompleteOn, "stor", "rename", "marker") {
		return bad("ftp.complete_on", "must be stor, rename or marker, not %q", c.FTP.CompleteOn)
	}
	if c.FTP.TLS != "off" && (c.FTP.TLSCertFile == "" || c.FTP.TLSKeyFile == "") {
		return bad("ftp.tls_cert_file", "ftp.tls = %q needs tls_cert_file and tls_key_file", c.FTP.TLS)
	}
	switch {
	case c.FTP.MaxUploadBytes <= 0:
		return bad("ftp.max_upload_bytes", "must be positive")
	case c.FTP.IdleTimeout <= 0:
		return bad("ftp.idle_timeout", "must be positive")
	case c.FTP.MaxConnectionsPerIP <= 0:
		return bad("ftp.max_connections_per_ip", "must be positive")
	case c.FTP.BanAfter <= 0:
		return bad("ftp.ban_after", "must be positive")
	case c.FTP.BanWindow <= 0:
		return bad("ftp.ban_window", "must be positive")
	case c.FTP.BanFor <= 0:
		return bad("ftp.ban_for", "must be positive")
	}
	for i, u := range c.FTP.Users {
		if u.Name == "" || strings.ContainsAny(u.Name, "/\\.") {
			return bad(fmt.Sprintf("ftp.users[%d].name", i), "must be a plain name, not %q", u.Name)
		}
		if !strings.HasPrefix(u.PasswordHash, "$2") {
			return bad(fmt.Sprintf("ftp.users[%d].password_hash", i), "must be a bcrypt hash (campaignd hash-password)")
		}
	}
	switch {
	case c.Ingest.MaxRows <= 0:
		return bad("ingest.max_rows", "must be positive")
	case c.Ingest.MaxInvalidPercent < 0 || c.Ingest.MaxInvalidPercent > 100:
		return bad("ingest.max_invalid_percent", "must be 0-100")
	case c.Ingest.MaxSegments <= 0 || c.Ingest.MaxSegments > 255:
		return bad("ingest.max_segments", "must be 1-255")
	case c.Ingest.DuplicateWindow < 0:
		return bad("ingest.duplicate_window", "must not be negative")
	case c.Ingest.DefaultSender == "":
		return bad("ingest.default_sender", "must not be empty")
	case ingest.CheckSender(c.Ingest.DefaultSender) != "":
		return bad("ingest.default_sender", "%s", ingest.CheckSender(c.Ingest.DefaultSender))
	case c.Ingest.MaxRecordBytes < 1024 || c.Ingest.MaxRecordBytes > maxRecordBytesLimit:
		return bad("ingest.max_record_bytes", "must be 1024-%d (one record is held in memory while read)", maxRecordBytesLimit)
	case c.Ingest.MaxFieldBytes < 256 || c.Ingest.MaxFieldBytes > c.Ingest.MaxRecordBytes:
		return bad("ingest.max_field_bytes", "must be at least 256 and at most ingest.max_record_bytes (%d)", c.Ingest.MaxRecordBytes)
	case c.Ingest.MaxErrorRows < 1:
		return bad("ingest.max_error_rows", "must be positive")
	}
	if c.Ingest.Language != campaignd.LangEN && c.Ingest.Language != campaignd.LangES {
		return bad("ingest.language", "must be one of en, es, not %q", c.Ingest.Language)
	}
	for i, cc := range c.Ingest.AllowedCountries {
		if len(cc) != 2 || strings.ToUpper(cc) != cc {
			return bad(fmt.Sprintf("ingest.allowed_countries[%d]", i), "must be an ISO 3166 code like \"MX\", not %q", cc)
		}
	}
	for i, u := range c.Web.Users {
		if u.Name == "" {
			return bad(fmt.Sprintf("web.users[%d].name", i), "must not be empty")
		}
		if !strings.HasPrefix(u.PasswordHash, "$2") {
			return bad(fmt.Sprintf("web.users[%d].password_hash", i), "must be a bcrypt hash (campaignd hash-password)")
		}
		if !campaignd.Role(u.Role).Valid() {
			return bad(fmt.Sprintf("web.users[%d].role", i), "must be admin, operator or viewer, not %q", u.Role)
		}
	}
	if !slices.Contains(webui.Languages, c.Web.Language) {
		return bad("web.language", "must be one of %s, not %q", strings.Join(webui.Languages, ", "), c.Web.Language)
	}
	if strings.TrimSpace(c.Web.Title) == "" || len(c.Web.Title) > 100 {
		return bad("web.title", "must name the console in 1 to 100 bytes")
	}
	if c.Web.LogoFile != "" {
		if !oneOf(strings.ToLower(filepath.Ext(c.Web.LogoFile)), ".svg", ".png", ".jpg", ".jpeg", ".webp", ".gif") {
			return bad("web.logo_file", "must be an SVG, PNG, JPEG, WebP or GIF file, not %q", c.Web.LogoFile)
		}
		if st, err := os.Stat(c.Web.LogoFile); err != nil {
			return bad("web.logo_file", "%v", err)
		} else if st.Size() > 1<<20 {
			return bad("web.logo_file", "is %d bytes; keep a logo under 1 MB", st.Size())
		}
	}
	if (c.Web.TLSCertFile == "") != (c.Web.TLSKeyFile == "") {
		return bad("web.tls_cert_file", "set both web.tls_cert_file and web.tls_key_file, or neither")
	}
	if !oneOf(c.SMPP.Bind, "transceiver", "pair") {
		return bad("smpp.bind", "must be transceiver or pair, not %q", c.SMPP.Bind)
	}
	if !campaignd.ValidIDFormat(c.SMPP.MessageIDFormat) {
		return bad("smpp.message_id_format", "must be one of %s, not %q", strings.Join(campaignd.IDFormats, ", "), c.SMPP.MessageIDFormat)
	}
	switch {
	case c.SMPP.TPS < 0:
		return bad("smpp.tps", "must not be negative (0 = no cap)")
	case c.SMPP.Window < 1 || c.SMPP.Window > 255:
		return bad("smpp.window", "must be 1-255")
	case c.SMPP.Binds < 1 || c.SMPP.Binds > 16:
		return bad("smpp.binds", "must be 1-16")
	case time.Duration(c.SMPP.Validity) < 10*time.Minute || time.Duration(c.SMPP.Validity) > 15*24*time.Hour:
		return bad("smpp.validity", "must be between 10m and 360h (15 days)")
	case c.SMPP.MaxAttempts < 1:
		return bad("smpp.max_attempts", "must be at least 1")
	case c.SMPP.ResponseTimeout <= 0:
		return bad("smpp.response_timeout", "must be positive")
	case c.SMPP.EnquireLink <= 0:
		return bad("smpp.enquire_link", "must be positive")
	}
	for key, v := range map[string]int{"smpp.source_ton": c.SMPP.SourceTON, "smpp.source_npi": c.SMPP.SourceNPI, "smpp.dest_ton": c.SMPP.DestTON, "smpp.dest_npi": c.SMPP.DestNPI} {
		if v < 0 || v > 255 {
			return bad(key, "must be 0-255")
		}
	}
	if c.Sending.Window != "" {
		if _, _, err := parseWindow(c.Sending.Window); err != nil {
			return bad("sending.window", "%v", err)
		}
	}
	if _, err := time.Parse("15:04", c.Report.Time); err != nil {
		return bad("report.time", "must be HH:MM, not %q", c.Report.Time)
	}
	if !strings.Contains(c.Report.FileName, "{date}") || strings.ContainsAny(c.Report.FileName, "/\\") {
		return bad("report.file_name", "must be a file name containing {date}, not %q", c.Report.FileName)
	}
	if c.Report.FTPURL != "" && !strings.HasPrefix(c.Report.FTPURL, "ftp://") {
		return bad("report.ftp_url", "must start with ftp://")
	}
	if !oneOf(c.Report.TLS, "off", "explicit", "implicit") {
		return bad("report.tls", "must be off, explicit or implicit, not %q", c.Report.TLS)
	}
	if c.Report.ReceiptTimeout <= 0 {
		return bad("report.receipt_timeout", "must be positive")
	}
	if c.Simulator.DeliveredPercent < 0 || c.Simulator.DeliveredPercent > 100 {
		return bad("simulator.delivered_percent", "must be 0-100")
	}
	if c.Simulator.ReceiptDelay < 0 {
		return bad("simulator.receipt_delay", "must not be negative")
	}
	if err := c.Optout.validate(); err != nil {
		return err
	}
	if err := c.Store.validate(); err != nil {
		return err
	}
	return nil
}

// maxRecordBytesLimit bounds ingest.max_record_bytes: a record is held in
// memory (a few times over, by the CSV reader) while it is read, and ingest
// must stay within its memory bar (SPEC §10).
const maxRecordBytesLimit = 16 << 20

// PassiveRange parses ftp.passive_ports ("50000-50100").
func (f FTPConfig) PassiveRange() (int, int, error) {
	a, b, ok := strings.Cut(f.PassivePorts, "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("must be a port range like \"50000-50100\", not %q", f.PassivePorts)
	}
	return lo, hi, nil
}

// parseWindow parses "08:00-21:00" into minutes after midnight.
func parseWindow(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "-")
	from, err1 := time.Parse("15:04", strings.TrimSpace(a))
	to, err2 := time.Parse("15:04", strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("must be like \"08:00-21:00\", not %q", s)
	}
	return from.Hour()*60 + from.Minute(), to.Hour()*60 + to.Minute(), nil
}

func oneOf(s string, options ...string) bool {
	for _, o := range options {
		if s == o {
			return true
		}
	}
	return false
}
